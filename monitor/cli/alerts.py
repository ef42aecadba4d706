"""``newsmon alerts`` (list), ``newsmon alerts retry [ID]`` and ``newsmon channels test NAME``.

``alerts`` (a group that lists when called alone) is a root command and ``channels_test`` the ``test``
command of the ``channels`` group (both loaded from here when used). Nothing here prints a channel URL
except through ``redact_url``; errors stored in the outbox are already free of secrets.
"""

from __future__ import annotations

from typing import Any, Iterable

import click

from monitor.alerts import deliver_pending, send_test
from monitor.cli.common import ID, AppContext, count_type, emit_json_array, format_option, one_line, pass_app
from monitor.errors import UsageError
from monitor.store import alerts as outbox_sql
from monitor.timeutil import utcnow

STATUSES = ("pending", "sent", "failed", "held")


def _summary(row: dict[str, Any]) -> str:
    payload = row["payload"]
    if "items" in payload:
        what = "digest" if row["kind"].startswith("digest-") else "summary"
        return f"{what} of {len(payload['items'])} alerts"
    return str(payload.get("headline") or "")


def alert_record(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON shape of one outbox row for ``newsmon alerts --format json``."""
    payload = row["payload"]
    return {
        "id": row["id"],
        "status": row["status"],
        "rule": row["rule"],
        "channel": row["channel"],
        "kind": row["kind"],
        "story_id": row["story_id"] or None,
        "headline": _summary(row),
        "url": payload.get("url"),
        "created": row["created"],
        "attempts": row["attempts"],
        "next_attempt": row["next_attempt"] if row["status"] == "pending" else None,
        "sent_at": row["sent_at"],
        "last_error": row["last_error"],
        "folded_into": row["folded_into"],
    }


def _clip(text: str, width: int) -> str:
    text = " ".join(one_line(str(text)).split())
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _table(records: Iterable[dict[str, Any]]) -> None:
    header = True
    for record in records:
        if header:
            click.echo(f"{'ID':>6}  {'STATUS':<7}  {'RULE':<16}  {'CHANNEL':<12}  {'KIND':<10}  {'STORY':>6}  "
                       f"{'TRIES':>5}  {'CREATED':<20}  HEADLINE / LAST ERROR")
            header = False
        status = record["status"]
        detail = _clip(record["headline"], 60)
        if record["status"] in ("pending", "failed") and record["last_error"]:
            detail += f"  [{_clip(record['last_error'], 80)}]"
        if record["folded_into"]:
            detail += f"  (in #{record['folded_into']})"
        kind = _clip(record["kind"], 10)
        story = record["story_id"] if record["story_id"] else "-"
        click.echo(f"{record['id']:>6}  {status:<7}  {_clip(record['rule'], 16):<16}  "
                   f"{_clip(record['channel'], 12):<12}  {kind:<10}  {story!s:>6}  {record['attempts']:>5}  "
                   f"{record['created']:<20}  {detail}")
    if header:
        click.echo("no alerts")


@click.group("alerts", invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), help="Only alerts with this status.")
@click.option("--rule", metavar="NAME", help="Only alerts of this rule.")
@click.option("--limit", type=count_type(1), default=None, help="At most this many (newest first).")
@format_option()
@click.pass_context
def alerts(ctx: click.Context, status: str | None, rule: str | None, limit: int | None,
           output_format: str) -> None:
    """The alert outbox, newest first: what was sent, what waits, what failed and why.

    `held` alerts wait for a digest, or were folded into a digest or flood-control summary (`in #ID`);
    they share its fate.
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(AppContext)
    if app is None:
        raise UsageError("no application context")
    store = app.store(readonly=True)
    with store.snapshot() as conn:   # each alert is written as it is read
        records = (alert_record(row) for row in outbox_sql.iter_alerts(conn, status=status, rule=rule, limit=limit))
        if output_format == "json":
            emit_json_array(records)
        else:
            _table(records)


@alerts.command("retry")
@click.argument("alert_id", required=False, type=ID, metavar="[ID]")
@click.option("--no-send", is_flag=True, help="Only put them back in the outbox; the daemon sends them.")
@pass_app
def retry(app: AppContext, alert_id: int | None, no_send: bool) -> None:
    """Put failed alerts (all, or alert ID) back in the outbox, due now, and try to send them.

    A pending alert ID is made due now. A member of a digest or summary is retried with it.
    """
    config = app.config()
    store = app.store()
    now = utcnow()
    with store.transaction() as conn:
        if alert_id is not None:
            row = outbox_sql.get_alert(conn, alert_id)
            if row is None:
                raise UsageError(f"no alert with id {alert_id}")
            if row["status"] == "sent":
                raise UsageError(f"alert {alert_id} was sent at {row['sent_at']}; nothing to retry")
        count = outbox_sql.retry_failed(conn, now, alert_id)
        if alert_id is not None and count == 0:
            count = outbox_sql.make_due(conn, alert_id, now)
    if count == 0:
        click.echo("no failed alerts to retry" if alert_id is None else f"alert {alert_id} is not waiting to be sent")
        return
    click.echo(f"{count} alert{'s' if count != 1 else ''} back in the outbox")
    if no_send:
        return
    report = deliver_pending(store, config, now=now)
    click.echo(f"sent={report.sent} retrying={report.retrying} failed={report.failed} waiting={report.waiting}")
    for error in report.errors:
        click.echo(f"  {error}", err=True)


@click.command("test")
@click.argument("name")
@pass_app
def channels_test(app: AppContext, name: str) -> None:
    """Send a test message to channel NAME now and say what happened."""
    config = app.config()
    click.echo(send_test(config, name))
