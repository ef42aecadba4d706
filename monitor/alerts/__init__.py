"""Alerts: the outbox policy, rendering, delivery and channels.

The pipeline calls ``enqueue_for_article`` inside its ingest transaction; the daemon's delivery job (and
``newsmon poll`` before it exits) calls ``run_digests`` then ``deliver_pending``; ``newsmon channels test``
calls ``send_test``; the config loader calls ``validate_channel_url``. Channel URLs are shown only through
``redact_url``.
"""

from __future__ import annotations

from monitor.alerts.channels import ChannelSpec, build_channel, channel_specs, validate_channel_url
from monitor.alerts.delivery import DeliveryReport, backoff, deliver_pending, send_test
from monitor.alerts.digest import run_digests
from monitor.alerts.outbox import EnqueueResult, enqueue_for_article, refresh_waiting_alerts, rule_channels
from monitor.alerts.redact import redact_text, redact_url
from monitor.alerts.render import Message, render

__all__ = [
    "ChannelSpec", "DeliveryReport", "EnqueueResult", "Message", "backoff", "build_channel", "channel_specs",
    "deliver_pending", "enqueue_for_article", "redact_text", "redact_url", "refresh_waiting_alerts", "render",
    "rule_channels", "run_digests", "send_test", "validate_channel_url",
]
