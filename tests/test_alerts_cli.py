"""``newsmon alerts [--status] [--rule] [--format]``, ``alerts retry [ID]`` and ``channels test NAME`` through
the real root command (``monitor.cli.main``), on a real archive; no secret in any output."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterator

import pytest

from monitor.alerts import deliver_pending
from monitor.cli import main
from tests.http_receiver import HttpReceiver
from tests.test_alerts_support import NOW, World, config_text, make_article

TOKEN = "cli-token-Pw93Xz"


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """The CLI configures the root logger; each test gets it back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as server:
        yield server


def run(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["--config", str(world.config_path), "--db", str(world.db_path), *args])
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def make_world(tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("CLI_TOKEN", TOKEN)
    out = tmp_path / "alerts.jsonl"
    channels_text = (f'[[channels]]\nname = "hook"\nurl = "webhook:{receiver.url("/hook")}?key=${{CLI_TOKEN}}"\n'
                     f'[[channels]]\nname = "file"\nurl = "jsonl://{out}"\n')
    rules = ('[[rules]]\nname = "mali"\nquery = "Mali"\nchannels = ["hook", "file"]\n'
             '[[rules]]\nname = "niger"\nquery = "Niamey"\nchannels = ["file"]\n')
    monitor = 'alert_give_up = "1h"'
    world = World(tmp_path, config_text(rules=rules, channels=channels_text, monitor=monitor))
    world.ingest("RFI", make_article("a", "Mali: Bamako hosts a regional summit on water"))
    world.ingest("RFI", make_article("b", "Niamey: Niger's new budget passes"))
    return world


def test_list_filters_and_json(tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(tmp_path, receiver, monkeypatch)
    receiver.status = 500
    deliver_pending(world.store, world.config, now=NOW)
    world.close()
    code, out, _ = run(world, capsys, "alerts", "--format", "json")
    assert code == 0
    records = json.loads(out)
    assert len(records) == 3
    assert {record["status"] for record in records} == {"sent", "pending"}
    pending = [record for record in records if record["status"] == "pending"]
    assert pending[0]["channel"] == "hook" and "HTTP 500" in pending[0]["last_error"]
    assert set(records[0]) >= {"id", "status", "rule", "channel", "kind", "story_id", "headline", "attempts",
                               "created", "sent_at", "last_error"}
    code, out, _ = run(world, capsys, "alerts", "--status", "pending", "--format", "json")
    assert [record["channel"] for record in json.loads(out)] == ["hook"]
    code, out, _ = run(world, capsys, "alerts", "--rule", "niger", "--format", "json")
    assert [record["rule"] for record in json.loads(out)] == ["niger"]
    code, out, err = run(world, capsys, "alerts")
    assert code == 0 and "HTTP 500" in out and "Bamako" in out
    assert TOKEN not in out + err


def test_retry_revives_failed_alerts_and_sends_them(tmp_path: Path, receiver: HttpReceiver,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(tmp_path, receiver, monkeypatch)
    receiver.status = 500
    deliver_pending(world.store, world.config, now=NOW)
    from datetime import timedelta

    deliver_pending(world.store, world.config, now=NOW + timedelta(hours=2))     # past alert_give_up
    (failed,) = world.alerts(status="failed")
    world.close()
    code, out, _ = run(world, capsys, "alerts", "--status", "failed")
    assert code == 0 and "gave up" in out
    receiver.status = 200
    code, out, err = run(world, capsys, "alerts", "retry")
    assert code == 0 and "1 alert back in the outbox" in out and "sent=1" in out
    assert len(receiver.accepted("/hook")) == 1
    code, out, _ = run(world, capsys, "alerts", "retry", str(failed["id"]))
    assert code == 2
    code, out, err = run(world, capsys, "alerts", "retry", "9999")
    assert code == 2 and "no alert with id 9999" in err
    assert TOKEN not in out + err


def test_channels_test_reports_success_and_failure_without_secrets(
        tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world(tmp_path, receiver, monkeypatch)
    world.close()
    code, out, err = run(world, capsys, "channels", "test", "hook")
    assert code == 0 and "sent a test message to channel hook" in out and "key=***" in out
    receiver.status = 500
    code, out, err = run(world, capsys, "channels", "test", "hook")
    assert code == 1 and "error: channel hook: HTTP 500" in err
    code, out, err = run(world, capsys, "channels", "test", "nope")
    assert code == 2 and "no channel named 'nope'" in err
    assert TOKEN not in out + err
