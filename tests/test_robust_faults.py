"""The daemon's catch-alls (issue "Robustness", item 7), each with a real fault behind it.

``grep -rn "except Exception\\|except:\\|except BaseException" monitor/`` finds five handlers:
the three ``except BaseException`` in the store roll back and re-raise (nothing hidden); the job wrapper of
``scheduler.JobScheduler`` logs a failing job with its traceback (the same failure again in one line, at its
2nd, 4th, 8th ... run) and runs it again at its next time (tested here with a real read-only archive); ``alerts.delivery._send_one`` turns a third-party sender's unexpected
exception into an ``AlertError`` recorded on the alert. The dispatcher's "poll crashed" path (a future's
exception) is exercised by ``test_robust_disk.py`` (the daemon on a full disk).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.errors import ReadOnlyError
from monitor.scheduler import JobScheduler, JobSpec
from monitor.store import Store
from monitor.timeutil import utcnow


def run_job_on_a_read_only_archive(db: Path, *, failures: int, every: timedelta) -> list[str]:
    """A write job on a read-only archive, run by a real JobScheduler until it has failed ``failures`` times; then
    the archive is made writable (the fault is gone) and the job runs until it succeeds. Returns its runs."""
    Store.open(db).close()
    stores = {"current": Store.open(db, readonly=True)}      # a write job on a read-only archive fails
    runs: list[str] = []
    succeeded = threading.Event()

    def write_meta() -> None:
        store = stores["current"]
        try:
            with store.transaction() as conn:
                store.set_meta(conn, "robust", str(len(runs)))
        except ReadOnlyError:
            runs.append("failed")
            raise
        runs.append("ok")
        succeeded.set()

    scheduler = JobScheduler([JobSpec("write-meta", write_meta, every=every)])
    scheduler.start(utcnow())
    try:
        deadline = time.monotonic() + 60
        while runs.count("failed") < failures:
            assert time.monotonic() < deadline, runs
            time.sleep(0.02)
        stores["current"].close()
        stores["current"] = Store.open(db)                  # the fault is gone: the next run succeeds
        assert succeeded.wait(30), runs
    finally:
        scheduler.shutdown()
        time.sleep(0.2)
        stores["current"].close()
    return runs


def test_failing_job_is_logged_with_its_cause_and_runs_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="monitor.scheduler")
    run_job_on_a_read_only_archive(tmp_path / "archive.db", failures=2, every=timedelta(milliseconds=50))
    failures = [record for record in caplog.records if "job failed" in record.getMessage()]
    assert failures, "a failing job must be logged"
    assert "job=write-meta" in failures[0].getMessage() and "read-only" in failures[0].getMessage()
    assert failures[0].exc_info is not None                 # with its traceback, for the operator
    with Store.open(tmp_path / "archive.db", readonly=True) as store:
        assert store.get_meta("robust") is not None


def test_a_job_failing_the_same_way_logs_its_traceback_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The daemon's tick runs every second: on a damaged or read-only archive it failed every second with a full
    traceback. The traceback is logged once, the same failure again only at the 2nd, 4th, 8th ... run in one
    line, and the recovery says how many runs failed."""
    caplog.set_level(logging.WARNING, logger="monitor.scheduler")
    runs = run_job_on_a_read_only_archive(tmp_path / "archive.db", failures=20, every=timedelta(milliseconds=20))
    failed = runs.index("ok")
    lines = [record for record in caplog.records if "job=write-meta" in record.getMessage()]
    with_traceback = [record for record in lines if record.exc_info is not None]
    again = [record.getMessage() for record in lines if "job failed again" in record.getMessage()]
    assert len(with_traceback) == 1 and "read-only" in with_traceback[0].getMessage()
    counts = [int(message.split("failed_runs=")[1].split()[0]) for message in again]
    assert counts == [2 ** power for power in range(1, failed.bit_length()) if 2 ** power <= failed]
    assert any(f"job recovered job=write-meta failed_runs={failed}" in record.getMessage() for record in lines)
    print(f"{failed} failed runs: {len(lines)} log lines, 1 traceback")
