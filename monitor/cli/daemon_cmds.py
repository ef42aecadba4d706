"""``newsmon run``, ``newsmon status`` and ``newsmon backup``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import AppContext, configure_logging, emit_json, format_option, one_line, pass_app
from monitor.config import MonitorSettings
from monitor.errors import UsageError
from monitor.timeutil import utcnow

log = logging.getLogger(__name__)


@click.command("run")
@pass_app
def run(app: AppContext) -> None:
    """Run the daemon in the foreground (systemd runs this): poll feeds on schedule, deliver alerts.

    SIGTERM/SIGINT stop it cleanly (in-flight polls finish within shutdown_grace); SIGHUP reloads the config.
    Logs go to stderr, one line per event with key=value fields.
    """
    from monitor.daemon import run_daemon

    if app.verbosity == 0:
        configure_logging(1)  # a daemon reports its lifecycle at info level; -q keeps only errors
    config = app.config()
    code = run_daemon(config, config_path=app.config_path, db_path=app.db_path)
    if code:
        raise SystemExit(code)


@click.command("status")
@format_option()
@pass_app
def status(app: AppContext, output_format: str) -> None:
    """Whether the daemon runs, feed health, archive counts and size (read-only)."""
    from monitor.store.leases import raw_connection
    from monitor.store.status import collect_status

    config = app.optional_config()  # without one (a bare archive): the archive's feeds and default settings
    settings = config.monitor if config is not None else MonitorSettings()
    store = app.store(readonly=True)
    with store.reading() as conn:
        report = collect_status(raw_connection(conn), db_path=app.db_path, now=utcnow(),
                                failing_after=settings.failing_after,
                                configured=config.feeds if config is not None else None)
    if output_format == "json":
        emit_json(report)
        return
    click.echo(render_status(report))


def render_status(report: dict[str, Any]) -> str:
    daemon = report["daemon"]
    lines = []
    if daemon["running"]:
        lines.append(f"daemon      running, pid {daemon['pid']} on {daemon['host']}, since {daemon['started']}")
        lines.append(f"last tick   {daemon['last_tick']}")
        if "polls" in daemon:
            lines.append(
                f"polling     {daemon.get('polls', 0)} polls ({daemon.get('poll_errors', 0)} errors), "
                f"{daemon.get('in_flight', 0)} in flight, lag p50 {daemon.get('lag_p50_s', 0)}s "
                f"p95 {daemon.get('lag_p95_s', 0)}s, network {daemon.get('network', 'up')}"
            )
    else:
        lines.append(f"daemon      not running ({daemon['reason']})")
        if daemon.get("last_tick"):
            lines.append(f"last tick   {daemon['last_tick']}")
    feeds = report["feeds"]
    lines.append(
        f"feeds       {feeds['enabled']} enabled: {feeds['ok']} ok, {feeds['never_polled']} never polled, "
        f"{feeds['erroring']} with errors, "
        f"{feeds['failing']} failing, {feeds['due']} due, {feeds['polling']} being polled; "
        f"{feeds['gone']} gone, {feeds['disabled']} disabled"
    )
    for feed in report["failing"]:
        lines.append(f"  failing   {feed['name']}: {feed['consecutive_errors']} errors, "
                     f"{feed['last_error_kind'] or 'error'}: {feed['last_error']} "
                     f"(last success {feed['last_success'] or 'never'}, next check {feed['next_check']})")
    for feed in report["erroring"]:
        lines.append(f"  errors    {feed['name']}: {feed['consecutive_errors']} in a row, "
                     f"{feed['last_error_kind'] or 'error'}: {feed['last_error']}")
    for feed in report["gone"]:
        lines.append(f"  gone      {feed['name']}: {feed['url']} answered 410 Gone; remove it from the config")
    for feed in report["moved"]:
        lines.append(f"  moved     {feed['name']}: {feed['url']} -> {feed['permanent_url']}; update the config")
    lines.append(f"articles    {_count(report['articles'])}")
    lines.append(f"stories     {_count(report['stories'])}")
    alerts = report["alerts"]
    if alerts is None:
        lines.append("alerts      -")
    else:
        lines.append(f"alerts      {alerts['pending']} pending, {alerts['failed']} failed, {alerts['sent']} sent")
    database = report["database"]
    lines.append(f"database    {database['path']}, {_size(database['bytes'])} (schema {database['schema']})")
    return "\n".join(one_line(line) for line in lines)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@click.command("backup")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@pass_app
def backup(app: AppContext, path: Path, force: bool) -> None:
    """Write a consistent copy of the archive to PATH (VACUUM INTO), also while the daemon runs."""
    from monitor.store.leases import raw_connection
    from monitor.store.status import backup as backup_archive

    store = app.store(readonly=True)
    if _is_archive_file(path, app.db_path):
        raise UsageError(f"{path} is a file of the archive itself: choose another path")
    with store.reading() as conn:
        size = backup_archive(raw_connection(conn), path, force=force)
    click.echo(f"backup written to {path} ({_size(size)})", err=True)


def _is_archive_file(path: Path, db_path: Path) -> bool:
    """Whether ``path`` is the archive or one of its SQLite companion files (symbolic links resolved)."""
    from monitor.store.status import COMPANION_SUFFIXES

    target = path.resolve()
    db = db_path.resolve()
    return any(target == db.with_name(db.name + suffix) for suffix in ("", *COMPANION_SUFFIXES))
