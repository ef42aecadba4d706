"""Channels against real loopback receivers: webhook and Apprise json:// (HTTP), email (aiosmtpd SMTP).

Each test checks the number of messages, their content, that feed text is neutralised, that no secret
reaches a log record, an outbox row or a report, and that a channel that is down loses nothing and does
not hold the other channels up.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterator

import pytest

from monitor.alerts import deliver_pending, send_test
from monitor.alerts.render import chat_text
from monitor.errors import AlertError, UsageError
from tests.http_receiver import HttpReceiver
from tests.smtp_receiver import SmtpReceiver
from tests.test_alerts_support import NOW, World, config_text, later, make_article

HOOK_TOKEN = "hook-token-Zq81xV"
HEADER_SECRET = "header-secret-7Hd2kP"
SMTP_PASSWORD = "smtp-pass-Lm39wQ"
SECRETS = (HOOK_TOKEN, HEADER_SECRET, SMTP_PASSWORD)

HOSTILE_TITLE = ("Mali: <script>alert('x')</script> **breaking** [click](https://evil.example/phish) "
                 "@everyone <!channel> _it_ `code` # title")
HOSTILE = make_article("hostile", HOSTILE_TITLE, summary="Bamako <img src=x onerror=alert(1)>",
                       url="https://news.example.org/mali?a=1&b=<2>")
PLAIN = make_article("plain", "Mali: parliament approves the 2026 budget in Bamako")


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    logging.getLogger("mail.log").setLevel(logging.INFO)     # the test server's own session dumps
    with SmtpReceiver(user="desk", password=SMTP_PASSWORD) as server:
        yield server


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.setenv("HOOK_HEADER", f"X-Newsmon-Token: {HEADER_SECRET}")
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)


def rules(*channels: str) -> str:
    names = ", ".join(f'"{name}"' for name in channels)
    return f'[[rules]]\nname = "mali"\nquery = "Mali OR Bamako"\nchannels = [{names}]\n'


def webhook_channel(receiver: HttpReceiver, name: str = "hook") -> str:
    return (f'[[channels]]\nname = "{name}"\nurl = "webhook:{receiver.url("/hook")}?token=${{HOOK_TOKEN}}"\n'
            f'secret_header = "${{HOOK_HEADER}}"\ntimeout = "5s"\n')


def apprise_json_channel(receiver: HttpReceiver, name: str = "chat") -> str:
    return f'[[channels]]\nname = "{name}"\nurl = "json://127.0.0.1:{receiver.port}/apprise"\ntimeout = "5s"\n'


def mail_channel(smtp: SmtpReceiver, name: str = "mail") -> str:
    url = (f"mailto://desk:${{SMTP_PASSWORD}}@127.0.0.1:{smtp.port}?smtp=127.0.0.1&from=newsmon@example.org"
           f"&to=desk@example.org")
    return f'[[channels]]\nname = "{name}"\nurl = "{url}"\ntimeout = "5s"\n'


def assert_no_secret(world: World, caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    rows = json.dumps(world.alerts())
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in rows
        for text in texts:
            assert secret not in text


def test_webhook_posts_our_alert_json_with_the_secret_header(
        tmp_path: Path, receiver: HttpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = World(tmp_path, config_text(rules=rules("hook"), channels=webhook_channel(receiver)))
    w.ingest("RFI", PLAIN)
    report = deliver_pending(w.store, w.config, now=NOW)
    assert report.sent == 1
    (request,) = receiver.accepted("/hook")
    assert request.headers["x-newsmon-token"] == HEADER_SECRET
    assert request.path.endswith(f"token={HOOK_TOKEN}")
    body = request.json()
    assert body["rule"] == "mali" and body["kind"] == "new" and body["headline"] == PLAIN.title
    assert body["url"] == PLAIN.url and body["sources"][0]["feed"] == "RFI"
    assert_no_secret(w, caplog)


ALERT_FIELDS = {"rule", "story_id", "headline", "url", "sources", "matched", "published", "kind"}   # INTERFACE.md


def test_a_webhook_digest_or_flood_summary_has_the_fields_of_every_alert(
        tmp_path: Path, receiver: HttpReceiver) -> None:
    """A script reading the webhook's alerts finds the same fields in a digest and in a flood-control summary
    (saying what they are), then the alerts they fold in ``items``."""
    from monitor.alerts import run_digests

    channels = webhook_channel(receiver) + webhook_channel(receiver, "capped").replace(
        'timeout = "5s"', 'timeout = "5s"\nmax_per_hour = 1')
    rule_text = (rules("hook") + 'mode = "digest"\nevery = "1h"\n'
                 + '[[rules]]\nname = "sahel"\nquery = "Sahel"\nchannels = ["capped"]\n')
    w = World(tmp_path, config_text(rules=rule_text, channels=channels))
    run_digests(w.store, w.config, now=NOW)
    w.ingest("RFI", PLAIN, now=later(minutes=5))
    w.ingest("RFI", make_article("flood", "Flooding in Mopti: Mali asks for help", published=later(minutes=6)),
             now=later(minutes=6))
    for index, title in enumerate(["Sahel: drought worsens in Niger", "Sahel: the G5 summit is postponed"]):
        w.ingest("RFI", make_article(f"sahel{index}", title), now=later(minutes=6))
    assert run_digests(w.store, w.config, now=later(minutes=61)) == 1
    assert deliver_pending(w.store, w.config, now=later(minutes=61)).sent == 2
    bodies = {body["kind"].split("-")[0]: body for body in receiver.json_bodies("/hook")}
    digest, summary = bodies["digest"], bodies["summary"]
    for body in (digest, summary):
        assert ALERT_FIELDS <= set(body), ALERT_FIELDS - set(body)
        assert body["story_id"] is None and body["url"] is None and body["sources"] == []
    assert digest["rule"] == "mali" and digest["headline"] == "Digest for rule mali: 2 stories"
    assert digest["published"] == "2026-02-17T08:06:00Z"
    assert [item["headline"] for item in digest["items"]] == [PLAIN.title, "Flooding in Mopti: Mali asks for help"]
    assert summary["rule"] is None and summary["headline"].startswith("2 alerts folded into one message")
    assert len(summary["items"]) == 2


def test_webhook_down_loses_nothing_and_does_not_hold_up_other_channels(
        tmp_path: Path, receiver: HttpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "alerts.jsonl"
    channels = webhook_channel(receiver) + f'[[channels]]\nname = "file"\nurl = "jsonl://{out}"\n'
    w = World(tmp_path, config_text(rules=rules("hook", "file"), channels=channels))
    receiver.status = 500
    w.ingest("RFI", PLAIN)
    w.ingest("RFI", make_article("second", "Flooding in Mopti: Mali asks for help"))
    report = deliver_pending(w.store, w.config, now=NOW)
    assert len(out.read_text().splitlines()) == 2            # the file channel went on
    assert report.sent == 2 and report.retrying == 1 and report.waiting == 1
    hook_rows = w.alerts(status="pending")
    assert len(hook_rows) == 2 and {row["channel"] for row in hook_rows} == {"hook"}
    assert any("HTTP 500" in (row["last_error"] or "") for row in hook_rows)
    assert len(receiver.requests) == 1                       # one probe, the rest of the batch waited
    receiver.status = 200
    report = deliver_pending(w.store, w.config, now=later(minutes=1))
    assert report.sent == 2
    assert len(receiver.accepted("/hook")) == 2
    assert deliver_pending(w.store, w.config, now=later(hours=1)).sent == 0    # nothing twice
    assert len(receiver.accepted("/hook")) == 2
    assert_no_secret(w, caplog, *report.errors)


def test_apprise_json_receives_neutralised_text(
        tmp_path: Path, receiver: HttpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = World(tmp_path, config_text(rules=rules("chat"), channels=apprise_json_channel(receiver)))
    w.ingest("RFI", HOSTILE)
    assert deliver_pending(w.store, w.config, now=NOW).sent == 1
    (request,) = receiver.accepted("/apprise")
    payload = request.json()                                   # Apprise's own JSON, carrying our text
    text = payload["title"] + "\n" + payload["message"]
    for raw in ("<script", "**", "](", "@everyone", "<!channel>", "<img", "`", "_it_"):
        assert raw not in text, raw
    assert "breaking" in text and "everyone" in text           # the words stay readable
    assert "https://news.example.org/mali?a=1&b=%3C2%3E" in text
    assert_no_secret(w, caplog)


def test_a_link_carries_no_mass_mention_to_a_chat_service(tmp_path: Path, receiver: HttpReceiver) -> None:
    """Discord pings everyone for ``@everyone`` anywhere in a message, a link included, and Matrix the whole
    room for ``@room``: the article link a feed gives reaches the chat with its ``@`` percent-encoded (the
    same page) and without the ``user@`` part that would also hide the real host."""
    w = World(tmp_path, config_text(rules=rules("chat"), channels=apprise_json_channel(receiver)))
    w.ingest("RFI", make_article("mention", "Mali: the junta answers its critics",
                                 url="https://news.example.org/@everyone/live?via=@here#@room"))
    w.ingest("RFI", make_article("userinfo", "Bamako: the airport reopens",
                                 url="https://trusted.example@phish.example/bamako"))
    assert deliver_pending(w.store, w.config, now=NOW).sent == 2
    texts = [request.json()["message"] for request in receiver.accepted("/apprise")]
    received = "\n".join(texts)
    assert "@" not in received
    assert "https://news.example.org/%40everyone/live?via=%40here#%40room" in received
    assert "https://phish.example/bamako" in received and "trusted.example" not in received


def test_a_follow_up_names_the_outlet_that_joined_the_story(
        tmp_path: Path, receiver: HttpReceiver, smtp: SmtpReceiver) -> None:
    """``notify_on_update``: the follow-up says which outlet is new, with its title and link, even when the
    story has more sources than a message lists."""
    rule = ('[[rules]]\nname = "mali"\nquery = "Mali OR Bamako"\nchannels = ["chat", "mail"]\n'
            'notify_on_update = true\n')
    w = World(tmp_path, config_text(rules=rule, channels=apprise_json_channel(receiver) + mail_channel(smtp)))
    title = "Mali : la junte dissout les partis politiques à Bamako"

    def report(index: int, minutes: float) -> None:
        w.ingest(f"Outlet {index:02d}", make_article(f"o{index}", title, url=f"https://o{index}.example/mali"),
                 now=later(minutes=minutes))

    report(0, 0)
    assert deliver_pending(w.store, w.config, now=later(minutes=1)).sent == 2
    for index in range(1, 22):          # one follow-up listing them all, sent when the channels are free
        report(index, 2)
    assert deliver_pending(w.store, w.config, now=later(minutes=3)).sent == 2
    report(22, 4)
    assert deliver_pending(w.store, w.config, now=later(minutes=5)).sent == 2
    chat = receiver.accepted("/apprise")[-1].json()["message"]
    assert "Sources so far (23)" in chat
    assert "New source Outlet 22 \u2013 Mali \u2236 la junte" in chat and "https://o22.example/mali" in chat
    mail = smtp.messages[-1]
    assert "update 2" in str(mail["Subject"])
    html_body = mail.get_body(preferencelist=("html",)).get_content()
    assert ('<p>New source: Outlet 22: <a href="https://o22.example/mali">Mali : la junte dissout les partis '
            'politiques à Bamako</a></p>') in html_body


def test_an_alert_for_an_entry_without_a_date_does_not_pass_the_time_it_was_seen_as_its_publication(
        tmp_path: Path, receiver: HttpReceiver, smtp: SmtpReceiver) -> None:
    w = World(tmp_path, config_text(rules=rules("chat", "mail"),
                                    channels=apprise_json_channel(receiver) + mail_channel(smtp)))
    w.ingest("RFI", make_article("undated", "Mali : le couvre-feu est levé à Bamako", undated=True,
                                 seen=later(minutes=3)), now=later(minutes=3))
    w.ingest("RFI", make_article("dated", "Flooding in Mopti: Mali asks for help", published=later(minutes=-50)),
             now=later(minutes=3))
    assert deliver_pending(w.store, w.config, now=later(minutes=4)).sent == 4
    chats = {request.json()["message"].splitlines()[1]: request.json()["message"]
             for request in receiver.accepted("/apprise")}
    assert "Published no date in the feed (first seen 2026-02-17T08:03:00Z UTC)" in chats[
        "Mali \u2236 le couvre-feu est levé à Bamako"]
    assert "Published 2026-02-17T07:10:00Z (UTC)" in chats["Flooding in Mopti\u2236 Mali asks for help"]
    html_bodies = [message.get_body(preferencelist=("html",)).get_content() for message in smtp.messages]
    assert sum("<p>Published: no date in the feed (first seen 2026-02-17T08:03:00Z UTC)</p>" in body
               for body in html_bodies) == 1


def test_apprise_json_down_then_up(tmp_path: Path, receiver: HttpReceiver,
                                   caplog: pytest.LogCaptureFixture) -> None:
    w = World(tmp_path, config_text(rules=rules("chat"), channels=apprise_json_channel(receiver)))
    w.ingest("RFI", PLAIN)
    receiver.status = 503
    report = deliver_pending(w.store, w.config, now=NOW)
    assert report.retrying == 1
    (row,) = w.alerts()
    assert row["status"] == "pending" and row["last_error"] and "without a reason" not in row["last_error"]
    receiver.status = 200
    assert deliver_pending(w.store, w.config, now=later(minutes=1)).sent == 1
    assert len(receiver.accepted("/apprise")) == 1


def test_email_has_escaped_html_and_text_and_a_clean_subject(
        tmp_path: Path, smtp: SmtpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = World(tmp_path, config_text(rules=rules("mail"), channels=mail_channel(smtp)))
    w.ingest("RFI", HOSTILE)
    assert deliver_pending(w.store, w.config, now=NOW).sent == 1
    (message,) = smtp.messages
    assert smtp.logins == ["desk"]
    subject = str(message["Subject"])
    assert subject.startswith("[newsmon] mali:") and "\n" not in subject
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    html_body = html_part.get_content()
    assert "<script" not in html_body and "<img" not in html_body
    assert "&lt;script&gt;" in html_body
    assert 'href="https://news.example.org/mali?a=1&amp;b=%3C2%3E"' in html_body
    assert "Sources so far (1)" in text_part.get_content()
    assert_no_secret(w, caplog)


def test_smtp_refusing_then_recovering_delivers_once_and_the_webhook_is_not_held_up(
        tmp_path: Path, smtp: SmtpReceiver, receiver: HttpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    channels = mail_channel(smtp) + webhook_channel(receiver)
    w = World(tmp_path, config_text(rules=rules("mail", "hook"), channels=channels))
    smtp.refuse = True
    w.ingest("RFI", PLAIN)
    report = deliver_pending(w.store, w.config, now=NOW)
    assert report.sent == 1 and report.retrying == 1
    assert len(receiver.accepted("/hook")) == 1
    (mail_row,) = w.alerts(status="pending")
    assert mail_row["channel"] == "mail" and "failed" in mail_row["last_error"]
    smtp.down()                                                # now it refuses connections outright
    report = deliver_pending(w.store, w.config, now=later(minutes=1))
    assert report.retrying == 1 and "Connection error" in w.alerts(status="pending")[0]["last_error"]
    smtp.refuse = False
    smtp.up()
    assert deliver_pending(w.store, w.config, now=later(minutes=1.5)).sent == 0    # backoff (1 min): not due yet
    assert deliver_pending(w.store, w.config, now=later(minutes=5)).sent == 1
    assert len(smtp.messages) == 1
    assert deliver_pending(w.store, w.config, now=later(hours=1)).sent == 0
    assert len(smtp.messages) == 1 and len(receiver.accepted("/hook")) == 1
    assert_no_secret(w, caplog, *report.errors)


def test_send_test_says_what_happened(tmp_path: Path, receiver: HttpReceiver, smtp: SmtpReceiver,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    channels = webhook_channel(receiver) + mail_channel(smtp)
    w = World(tmp_path, config_text(rules=rules("hook"), channels=channels))
    outcome = send_test(w.config, "hook")
    assert "hook" in outcome and HOOK_TOKEN not in outcome and "token=***" in outcome
    assert receiver.accepted("/hook")[0].json()["kind"] == "test"
    assert "mail" in send_test(w.config, "mail") and len(smtp.messages) == 1
    smtp.down()
    with pytest.raises(AlertError) as failure:
        send_test(w.config, "mail")
    assert "Connection error" in str(failure.value)
    assert "log" in send_test(w.config, "log")
    with pytest.raises(UsageError):
        send_test(w.config, "nope")
    assert_no_secret(w, caplog, outcome, str(failure.value))


def test_two_deliverers_at_once_send_each_alert_once(tmp_path: Path, receiver: HttpReceiver) -> None:
    """``newsmon poll`` beside the daemon: two connections deliver at the same time; claims keep them apart."""
    import threading

    from monitor.store import Store

    w = World(tmp_path, config_text(rules=rules("hook"), channels=webhook_channel(receiver)))
    for index, headline in enumerate(["Mali: Gao hospital opens a new wing",
                                      "Bamako court rules on the land dispute",
                                      "Mali football team wins in Abidjan"]):
        w.ingest("RFI", make_article(f"c{index}", headline))
    receiver.delay = 0.2
    second = Store.open(w.db_path)
    reports = []
    threads = [threading.Thread(target=lambda store=store: reports.append(deliver_pending(store, w.config, now=NOW)))
               for store in (w.store, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    second.close()
    assert sum(report.sent for report in reports) == 3
    assert len(receiver.accepted("/hook")) == 3
    assert len({request.json()["story_id"] for request in receiver.accepted("/hook")}) == 3


def real_titles(corpora: Path, *names: str) -> list[str]:
    """Entry titles of real feeds of the corpus, as the production parser reads them."""
    from monitor.parse import parse_feed

    titles: list[str] = []
    for name in names:
        titles += [entry.title for entry in parse_feed((corpora / "real-feeds" / name).read_bytes()).entries]
    return titles


MATTERMOST_MAX = 4000      # characters Apprise's Mattermost plugin says a post may have


def send_digest(tmp_path: Path, receiver: HttpReceiver, url: str, titles: list[str]) -> list[str]:
    """Each title a story of a digest rule's period; the texts the ``url`` channel posted for the digest."""
    from monitor.alerts import run_digests

    channel = f'[[channels]]\nname = "team"\nurl = "{url}"\ntimeout = "5s"\n'
    rule = '[[rules]]\nname = "all"\nquery = "bamako"\nchannels = ["team"]\nmode = "digest"\nevery = "1h"\n'
    w = World(tmp_path, config_text(rules=rule, channels=channel))
    run_digests(w.store, w.config, now=NOW)
    for index, title in enumerate(titles):
        w.ingest(f"Outlet {index}", make_article(f"d{index}", title, summary="Bamako"), now=later(minutes=1))
    assert run_digests(w.store, w.config, now=later(minutes=61)) == 1
    assert deliver_pending(w.store, w.config, now=later(minutes=61)).sent == 1
    return [request.json()["text"] for request in receiver.accepted()]


def test_a_digest_longer_than_a_chat_service_takes_arrives_whole_in_messages_that_fit(
        tmp_path: Path, receiver: HttpReceiver, corpora: Path) -> None:
    """Chat services refuse a message over their length limit (Discord 2000 characters, Telegram 4096,
    Mattermost 4000): a digest of real French and English stories is split into messages that fit,
    and every story reaches the channel."""
    titles = real_titles(corpora, "franceinfo_titres_2024-01-18.xml", "bbc_news_world_2026-02-17.xml")[:30]
    texts = send_digest(tmp_path, receiver, f"mmost://127.0.0.1:{receiver.port}/hooktoken", titles)
    assert len(texts) > 1
    assert all(len(text) <= MATTERMOST_MAX for text in texts), [len(text) for text in texts]
    received = "".join(texts)
    assert f"Digest for rule all∶ {len(titles)} stories" in received
    for title in titles:
        assert chat_text(title) in received, title


def test_an_overflow_mode_set_in_the_channel_url_is_kept(
        tmp_path: Path, receiver: HttpReceiver, corpora: Path) -> None:
    """``overflow=`` in the URL (after a ``#channel``, which Apprise reads as part of the path) is the user's
    choice: newsmon does not add its own."""
    titles = real_titles(corpora, "franceinfo_titres_2024-01-18.xml")[:20]
    url = f"mmost://127.0.0.1:{receiver.port}/hooktoken/#desk?overflow=upstream"
    (text,) = send_digest(tmp_path, receiver, url, titles)
    assert len(text) > MATTERMOST_MAX
