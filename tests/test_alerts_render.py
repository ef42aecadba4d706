"""Rendering and secrets, without the network: neutralisation per medium, redact_url, validate_channel_url."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.alerts import redact_url, render, validate_channel_url
from monitor.alerts.redact import redact_text, register_secrets, secrets_of
from monitor.alerts.render import chat_text, one_line, safe_link

MARKUP = set("*_~`|[]<>#\\()!@:&")


def payload(headline: str, *, url: str = "https://news.example.org/a", feed: str = "RFI") -> dict:
    return {
        "rule": "mali", "story_id": 1, "kind": "new", "headline": headline, "url": url, "published":
        "2026-02-17T08:00:00Z", "matched": [{"term": "mali", "field": "title"}], "feeds": [feed],
        "sources": [{"article_id": 1, "url": url, "feed": feed, "title": headline,
                     "published": "2026-02-17T08:00:00Z"}],
    }


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_chat_text_never_carries_markup_or_newlines(text: str) -> None:
    cleaned = chat_text(text)
    assert not (set(cleaned) & MARKUP)
    assert "\n" not in cleaned and "\r" not in cleaned


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_html_body_escapes_any_feed_text(text: str) -> None:
    message = render(payload(text, feed=text))
    body = message.html
    # every tag in the body is one of ours
    import re

    assert set(re.findall(r"<(/?[a-z0-9]+)", body)) <= {"p", "/p", "b", "/b", "h3", "/h3", "a", "/a", "ul", "/ul",
                                                      "li", "/li"}
    assert "\n" not in message.title and "\r" not in message.title


def test_links_only_for_http_urls() -> None:
    assert safe_link("javascript:alert(1)") is None
    assert safe_link("data:text/html,<script>") is None
    assert safe_link("https://x.example/a b<c>|d") == "https://x.example/a%20b%3Cc%3E%7Cd"
    message = render(payload("Mali", url="javascript:alert(1)"))
    assert "javascript:" not in message.html and "javascript" not in message.chat


def test_one_line_strips_control_and_bidi_characters() -> None:
    assert one_line("a\r\nBcc: evil@example.org\u202e\x00b") == "a Bcc: evil@example.org b"
    assert len(one_line("x" * 1000)) == 300


def test_digest_and_summary_render_every_item() -> None:
    items = [payload(f"Story {index}") for index in range(3)]
    digest = render({"kind": "digest-2026-02-17T09:00:00Z", "rule": "mali", "items": items})
    assert "Digest for rule mali: 3 stories" in digest.title
    assert all(f"Story {index}" in digest.text for index in range(3))
    summary = render({"kind": "summary-x", "rule": None, "max_per_hour": 30, "items": items})
    assert "3 alerts folded" in summary.title and "30 per hour" in summary.text
    single = render({"kind": "digest-2026-02-17T09:00:00Z", "rule": "mali", "items": items[:1]})
    assert "1 story" in single.title and "1 story" in single.chat and "stories" not in single.chat


@pytest.mark.parametrize(("url", "shown", "hidden"), [
    ("mailtos://desk:pa55-word@mail.example.org?to=desk@example.org",
     "mailtos://desk:***@mail.example.org?to=desk@example.org", "pa55-word"),
    ("webhook:https://hooks.example.org/in?token=abc123456", "webhook:https://hooks.example.org/in?token=***",
     "abc123456"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "slack://***", "TIiajkdnlazkcOXrIdevi7FQ"),
    ("tgram://123456789:ABCdefGHIjklMNOpqr/12345", "tgram://***", "ABCdefGHIjklMNOpqr"),
    ("https://discord.com/api/webhooks/1234567/abcdefTOKENxyz", "https://discord.com/api/***", "abcdefTOKENxyz"),
    ("json://user:pw-1234@127.0.0.1:8080/notify", "json://user:***@127.0.0.1:8080/notify", "pw-1234"),
    ("jsonl:///var/lib/newsmon/alerts.jsonl", "jsonl:///var/lib/newsmon/alerts.jsonl", None),
    ("log:", "log:", None),
])
def test_redact_url(url: str, shown: str, hidden: str | None) -> None:
    assert redact_url(url) == shown
    if hidden:
        assert hidden not in redact_url(url)
        assert redact_text(f"failed to reach {url}", secrets_of(url)).count(hidden) == 0


def test_secret_header_is_a_secret() -> None:
    secrets = secrets_of("webhook:https://x.example/hook", "X-Token: header-value-123")
    assert "header-value-123" in secrets


def test_third_party_log_lines_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    register_secrets(secrets_of("webhook:https://x.example/hook?token=scrub-me-9876"))
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="apprise")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpx").info("HTTP Request: POST %s", "https://x.example/hook?token=scrub-me-9876")
        logging.getLogger("apprise").warning("failed token=scrub-me-9876")
    assert "scrub-me-9876" not in caplog.text
    assert caplog.text.count("***") >= 2


@pytest.mark.parametrize("url", [
    "log:", "jsonl:///tmp/a.jsonl", "webhook:https://x.example/hook", "mailtos://u:p@mail.example.org?to=a@b.org",
    "json://127.0.0.1:8080/x", "ntfy://ntfy.example.org/topic",
])
def test_valid_channel_urls(url: str) -> None:
    validate_channel_url(url)


@pytest.mark.parametrize(("url", "reason"), [
    ("", "empty"),
    ("nosuchscheme://host/x", "unknown channel scheme"),
    ("webhook:ftp://x.example/a", "http(s)"),
    ("jsonl://", "file path"),
    ("just-text", "not a channel URL"),
    ("slack://abc", "Apprise cannot use"),
])
def test_invalid_channel_urls(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        validate_channel_url(url)


def test_invalid_url_error_shows_no_secret() -> None:
    with pytest.raises(ValueError) as failure:
        validate_channel_url("slack://secret-token-abcdef")
    assert "secret-token-abcdef" not in str(failure.value)
