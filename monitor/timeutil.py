"""Times, durations and sizes: one definition used by config, store and CLI."""

from __future__ import annotations

import re
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3,
}
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_DURATION_DAYS = 36525   # 100 years: longer is a typo, and would overflow date arithmetic
MAX_SIZE = 2**62            # bytes: far above any real limit, and still an exact integer


class DateRangeError(ValueError):
    """A date and time whose UTC equivalent falls outside years 1 to 9999 (0001-01-01T00:00+05:00)."""


def _as_utc(parsed: datetime, text: str) -> datetime:
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise DateRangeError(f"{text!r} is out of range: in UTC it falls outside the years 1 to 9999") from None


def zone_named(name: str) -> ZoneInfo | None:
    """The IANA time zone ``name`` ("Africa/Bamako"), or None when no zone has that name.

    Not only unknown names: a folder of the zone database ("America/Argentina", "Europe") or one of its
    files that is not a zone ("zone.tab") makes ``ZoneInfo`` raise OSError or ValueError, not
    ZoneInfoNotFoundError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def utcnow() -> datetime:
    """The current time, UTC-aware, to the second (what the archive stores)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def to_iso(value: datetime | None) -> str | None:
    """A UTC ISO-8601 string with a Z, fixed width so that strings sort as times."""
    if value is None:
        return None
    return _iso(value)


@lru_cache(maxsize=4096)
def _iso(value: datetime) -> str:
    """Cached: ingest formats the same few times (a poll's clock, an article's dates) again and again."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    # Not strftime(ISO_FORMAT): its %Y writes year 500 as "500", which sorts after "2026".
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
            f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z")


def from_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return _as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")), value)


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"7d"``, ``"1w"``, ``"250ms"``. Raises ValueError with a reason."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as \"15m\", got {text!r}")
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit, such as \"90s\", \"10m\", \"2h\" or \"7d\""
        )
    number, unit = match.groups()
    seconds = float(number) * _DURATION_UNITS[unit]
    if seconds > MAX_DURATION_DAYS * 86400:
        raise ValueError(f"{text!r} is too long: at most {MAX_DURATION_DAYS}d (100 years)")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """A duration as ``parse_duration`` reads it back exactly: the largest whole unit ("2h", "90s", "1500ms")."""
    milliseconds = round(value.total_seconds() * 1000)
    for unit in ("d", "h", "m", "s"):
        size = int(_DURATION_UNITS[unit] * 1000)
        if milliseconds and milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


def parse_size(text: str) -> int:
    """``"10MB"``, ``"512KiB"``, ``"1000"`` (bytes). Raises ValueError with a reason."""
    if not isinstance(text, str):
        raise ValueError(f"expected a size such as \"10MB\", got {text!r}")
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size: use a number and a unit, such as \"10MB\" or \"512KiB\"")
    number, unit = match.groups()
    size = float(number) * _SIZE_UNITS[(unit or "b").lower()]
    if size > MAX_SIZE:  # also infinity, from a number with hundreds of digits
        raise ValueError(f"{text!r} is too large")
    return int(size)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since`` / ``--until`` values: a duration back from now (``"7d"``) or a date/time (``2026-02-17``)."""
    now = now or utcnow()
    try:
        return now - parse_duration(text)
    except ValueError:
        if _DURATION.match(text):
            raise                    # a duration, but too long: say so rather than "neither ... nor"
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (\"7d\", \"12h\") nor a date (\"2026-02-17\", \"2026-02-17T08:00\")"
        ) from None
    return _as_utc(parsed, text)
