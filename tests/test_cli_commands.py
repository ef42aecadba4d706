"""The command tree: every command is reachable under its documented name, and a command imports
only what it needs (commands are loaded when first used)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from monitor import __version__
from monitor.cli import LazyGroup, cli

REPO = Path(__file__).resolve().parents[1]

# The command tree of INTERFACE.md / README.md.
EXPECTED = {
    "": {"alerts", "backup", "channels", "export", "feeds", "import", "init", "poll", "rules", "run", "search",
         "status", "stories", "story"},
    "feeds": {"add", "check", "disable", "enable", "export", "import", "list", "remove"},
    "rules": {"list", "rematch", "test"},
    "channels": {"test"},
}


def test_every_command_resolves_under_its_own_name() -> None:
    ctx = click.Context(cli)
    for path, names in EXPECTED.items():
        group = cli if not path else cli.get_command(ctx, path)
        assert isinstance(group, click.Group)
        assert set(group.list_commands(ctx)) == names
        for name in names:
            command = group.get_command(ctx, name)
            assert command is not None and command.name == name, (path, name)
            help_run = CliRunner().invoke(cli, [*([path] if path else []), name, "--help"])
            assert help_run.exit_code == 0, help_run.output
            assert "Usage:" in help_run.output
    assert cli.get_command(ctx, "no-such-command") is None


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["feeds", "lst"])
    assert result.exit_code == 2
    assert "No such command 'lst'" in result.output


def test_lazy_entries_name_importable_commands() -> None:
    ctx = click.Context(cli)
    groups = [cli] + [cli.get_command(ctx, name) for name in ("feeds", "rules", "channels")]
    for group in groups:
        assert isinstance(group, LazyGroup)
        for name, target in group.lazy.items():
            assert target.startswith("monitor.cli.") and ":" in target, target
            assert group.get_command(ctx, name).name == name


def _fresh_interpreter(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_reading_command_does_not_import_the_poll_pipeline(tmp_path: Path) -> None:
    """`newsmon search` and `--version` start without the pipeline, the HTML cleaner and the alert channels."""
    heavy = ["monitor.pipeline", "monitor.clean", "bs4", "feedparser", "monitor.alerts.channels", "httpx"]
    out = _fresh_interpreter(
        "import json, sys\n"
        "from monitor.cli import cli\n"
        "try:\n"
        "    cli.main(['--version'], prog_name='newsmon')\n"
        "except SystemExit:\n"
        "    pass\n"
        "version = [m for m in %r if m in sys.modules]\n"
        "cli.get_command(None, 'search')\n"
        "search = [m for m in %r if m in sys.modules]\n"
        "print(json.dumps([version, search]))\n" % (heavy, heavy)
    )
    lines = out.strip().splitlines()
    assert lines[0] == f"newsmon {__version__}"
    assert json.loads(lines[-1]) == [[], []]
    # A command that needs one of them does load it: the check above can fail.
    out = _fresh_interpreter(
        "import sys\nfrom monitor.cli import cli\n"
        "cli.get_command(None, 'feeds').get_command(None, 'add')\nprint('bs4' in sys.modules)\n"
    )
    assert out.strip() == "True"


def _reference_options() -> dict[tuple[str, ...], set[str]]:
    """Command path -> the options README.md's command reference shows for it."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Command reference", 1)[1].split("```", 2)[1]
    ctx = click.Context(cli)
    shown: dict[tuple[str, ...], set[str]] = {}
    last: tuple[str, ...] = ()
    for line in block.splitlines()[2:]:
        usage = re.split(r"\s{3,}", line.strip())[0]
        for segment in usage.split(" | "):
            tokens = segment.split()
            path: list[str] = []
            group: click.Command = cli
            while tokens and isinstance(group, click.Group) and group.get_command(ctx, tokens[0]) is not None:
                group = group.get_command(ctx, tokens[0])  # type: ignore[assignment]
                path.append(tokens.pop(0))
            if path:
                last = tuple(path)
            shown.setdefault(last, set()).update(re.findall(r"--[a-z][a-z-]*", segment))
    return shown


def test_the_readme_command_reference_shows_every_option_of_every_command() -> None:
    ctx = click.Context(cli)
    shown = _reference_options()
    commands = {(*([path] if path else []), name) for path, names in EXPECTED.items() for name in names}
    for key in sorted(commands | {("alerts", "retry")}):
        command: click.Command = cli
        for name in key:
            command = command.get_command(ctx, name)  # type: ignore[attr-defined]
        if isinstance(command, click.Group) and key != ("alerts",):
            continue
        options = {opt for param in command.params if isinstance(param, click.Option)
                   for opt in param.opts if opt.startswith("--") and opt != "--help"}
        assert shown.get(key, set()) == options, key
