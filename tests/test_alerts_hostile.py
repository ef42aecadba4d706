"""Hostile channels and inputs on the alerts side: receivers that trickle, configs that Apprise refuses,
non-ASCII text. Real loopback servers and real archives; nothing of newsmon is mocked."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from monitor.alerts import deliver_pending, send_test
from monitor.errors import AlertError
from tests.test_alerts_support import NOW, World, config_text, make_article


class TricklingServer:
    """Answers every HTTP request with 200 and a 100 kB body sent one byte every ``pace`` seconds; with
    ``smtp=True``, greets every connection with an endless SMTP greeting line, one byte every ``pace``."""

    def __init__(self, pace: float = 0.2, *, smtp: bool = False) -> None:
        self.pace = pace
        self.smtp = smtp
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "TricklingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.smtp:
                    conn.sendall(b"220 ")
                else:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not self.stop.wait(self.pace):
                    conn.sendall(b"x")
            except OSError:
                return


@pytest.fixture
def trickle() -> Iterator[TricklingServer]:
    with TricklingServer() as server:
        yield server


def deliver_within(w: World, *, seconds: float, blocker: str) -> Any:
    """``deliver_pending`` in a thread, which must return within ``seconds`` (a hang fails the test)."""
    reports = []
    worker = threading.Thread(target=lambda: reports.append(deliver_pending(w.store, w.config, now=NOW)),
                              daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=2 * seconds)
    assert not worker.is_alive(), f"delivery still blocked on a trickling {blocker}"
    assert time.monotonic() - started < seconds
    return reports[0]


def test_a_webhook_that_trickles_its_answer_is_cut_off_at_the_channel_timeout(
        tmp_path: Path, trickle: TricklingServer) -> None:
    channels = (f'[[channels]]\nname = "hook"\nurl = "webhook:http://127.0.0.1:{trickle.port}/hook"\n'
                'timeout = "1s"\n')
    rules = '[[rules]]\nname = "mali"\nquery = "Mali"\nchannels = ["hook"]\n'
    w = World(tmp_path, config_text(rules=rules, channels=channels))
    w.ingest("RFI", make_article("a1", "Mali: parliament approves the budget"))
    reports = [deliver_within(w, seconds=10, blocker="webhook")]
    assert reports[0].sent == 0 and reports[0].retrying == 1
    (row,) = w.alerts()
    assert row["status"] == "pending"
    assert "within 1s" in row["last_error"]
    w.close()


def test_channels_test_on_a_trickling_webhook_fails_at_the_timeout(tmp_path: Path, trickle: TricklingServer) -> None:
    channels = (f'[[channels]]\nname = "hook"\nurl = "webhook:http://127.0.0.1:{trickle.port}/hook"\n'
                'timeout = "1s"\n')
    w = World(tmp_path, config_text(rules="", channels=channels))
    started = time.monotonic()
    with pytest.raises(AlertError, match="within 1s"):
        send_test(w.config, "hook")
    assert time.monotonic() - started < 10
    w.close()


@pytest.fixture
def trickle_smtp() -> Iterator[TricklingServer]:
    with TricklingServer(smtp=True) as server:
        yield server


def test_an_smtp_server_that_trickles_its_greeting_is_cut_off_and_does_not_hold_up_others(
        tmp_path: Path, trickle_smtp: TricklingServer) -> None:
    out = tmp_path / "alerts.jsonl"
    channels = (f'[[channels]]\nname = "mail"\nurl = "mailto://127.0.0.1:{trickle_smtp.port}?smtp=127.0.0.1'
                '&from=newsmon@example.org&to=desk@example.org"\ntimeout = "1s"\n'
                f'[[channels]]\nname = "file"\nurl = "jsonl://{out}"\n')
    rules = '[[rules]]\nname = "mali"\nquery = "Mali"\nchannels = ["mail", "file"]\n'
    w = World(tmp_path, config_text(rules=rules, channels=channels))
    w.ingest("RFI", make_article("a1", "Mali: parliament approves the budget"))
    reports = [deliver_within(w, seconds=10, blocker="SMTP server")]
    assert reports[0].sent == 1 and reports[0].retrying == 1
    by_channel = {row["channel"]: row for row in w.alerts()}
    assert by_channel["file"]["status"] == "sent"
    assert by_channel["mail"]["status"] == "pending"
    assert "within 1s" in by_channel["mail"]["last_error"]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    w.close()


def test_channels_test_on_a_trickling_smtp_server_fails_at_the_timeout_and_exits(
        tmp_path: Path, trickle_smtp: TricklingServer) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text(f'[[channels]]\nname = "mail"\nurl = "mailto://127.0.0.1:{trickle_smtp.port}?smtp=127.0.0.1'
                      '&from=newsmon@example.org&to=desk@example.org"\ntimeout = "1s"\n', encoding="utf-8")
    argv = [sys.executable, "-m", "monitor", "--config", str(config), "--db", str(tmp_path / "n.db"),
            "channels", "test", "mail"]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert "error: channel mail: no answer within 1s" in result.stderr


def test_a_channel_url_apprise_refuses_is_one_line_that_says_why(tmp_path: Path) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text('[[channels]]\nname = "log2"\nurl = "log:"\n'
                      '[[channels]]\nname = "mail"\nurl = "mailto://127.0.0.1:2525?to=desk@example.org"\n',
                      encoding="utf-8")
    argv = [sys.executable, "-m", "monitor", "--config", str(config), "--db", str(tmp_path / "n.db"), "rules", "list"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {config}: channels[1].url: ")
    assert "From" in lines[0]          # Apprise's reason (no sender address), not only "Could not load E-Mail URL"


def test_the_log_channel_writes_french_and_emoji_headlines_as_they_are(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = '[[rules]]\nname = "mali"\nquery = "Mali"\nchannels = ["log"]\n'
    w = World(tmp_path, config_text(rules=rules))
    w.ingest("RFI", make_article("a1", "Mali : la junte à Bamako repousse les élections \U0001F1F2\U0001F1F1"))
    with caplog.at_level("INFO", logger="monitor.alerts.log"):
        report = deliver_pending(w.store, w.config, now=NOW)
    assert report.sent == 1
    (line,) = [record.getMessage() for record in caplog.records if record.name == "monitor.alerts.log"]
    assert 'headline="[newsmon] mali: Mali : la junte à Bamako repousse les élections \U0001F1F2\U0001F1F1"' in line
    w.close()


def test_a_batch_longer_than_its_claim_is_not_sent_again_by_a_second_deliverer(tmp_path: Path) -> None:
    """The daemon sends a long batch to a slow webhook; `newsmon poll` beside it, once the batch has run past
    the first claim, must not pick the rows still waiting in that batch (they would go out twice)."""
    from monitor.alerts.delivery import CLAIM
    from monitor.store import Store
    from tests.http_receiver import HttpReceiver

    with HttpReceiver() as receiver:
        channels = f'[[channels]]\nname = "hook"\nurl = "webhook:{receiver.url("/hook")}"\ntimeout = "10s"\n'
        rules = '[[rules]]\nname = "mali"\nquery = "Mali OR Bamako"\nchannels = ["hook"]\n'
        w = World(tmp_path, config_text(rules=rules, channels=channels))
        for index, headline in enumerate(["Mali: Gao hospital opens a new wing",
                                          "Bamako court rules on the land dispute",
                                          "Mali football team wins in Abidjan"]):
            w.ingest("RFI", make_article(f"c{index}", headline))
        receiver.delay = 1.0
        first = threading.Thread(target=lambda: deliver_pending(w.store, w.config, now=NOW), daemon=True)
        first.start()
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)                     # the first alert is recorded; the batch goes on
        second = Store.open(w.db_path)
        # the second deliverer's clock: just past the first claim (a batch that took longer than CLAIM)
        deliver_pending(second, w.config, now=NOW + CLAIM + timedelta(seconds=0.5))
        first.join(timeout=30)
        second.close()
        assert len(receiver.requests) == 3
        assert sorted(request.json()["story_id"] for request in receiver.requests) == [1, 2, 3]
        w.close()
