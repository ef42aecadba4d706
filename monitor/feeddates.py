"""Feed dates that feedparser reads wrong, read right: a date handler tried before feedparser's own.

feedparser knows the RFC 822 zone names of North America and UTC. Any other zone name (``CET``,
``WAT``, ``IST``, ``Europe/Paris``) it silently reads as UTC, an hour or more off; ``GMT+1`` and dates
with French day and month names (``lun., 07 déc. 2026``) it reads as no date at all; a date and time
with a zone name (``2026-12-07 10:00:00 CET``) loses its time; a Unix time (``1733566800``) becomes
a date in 2017. :func:`parse_feed_date` answers for those forms only and returns None for every
other, so feedparser's handlers read them as before.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime
from email.utils import parsedate_tz
from zoneinfo import ZoneInfo

import feedparser

from monitor.timeutil import zone_named

_HOUR = 3600

# Zone names in use in feeds that feedparser does not know, with their offset from UTC in hours. An
# ambiguous name is read in its most common news use (IST: India, BST: British summer time); the
# names feedparser knows (GMT, UT, UTC, Z, EST/EDT, CST/CDT, MST/MDT, PST/PDT, AST/ADT) are left to it.
ZONE_OFFSETS: dict[str, float] = {
    "WET": 0, "WEST": 1, "BST": 1, "IST": 5.5, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2,
    "EET": 2, "EEST": 3, "MSK": 3, "TRT": 3, "WAT": 1, "CAT": 2, "EAT": 3, "SAST": 2,
    "GST": 4, "PKT": 5, "NPT": 5.75, "ICT": 7, "WIB": 7, "HKT": 8, "SGT": 8, "PHT": 8, "AWST": 8,
    "JST": 9, "KST": 9, "ACST": 9.5, "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13,
    "AKST": -9, "AKDT": -8, "HST": -10, "NST": -3.5, "NDT": -2.5, "BRT": -3, "ART": -3,
}

_UNIX_TIME = re.compile(r"1\d{9}(?:\d{3})?")  # seconds or milliseconds, 2001-09 to 2033-05
_OFFSET_ZONE = re.compile(r"\s*(?:GMT|UTC|UT)\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_NAMED_ZONE = re.compile(r"\s+\(?([A-Z]{2,5})\)?$")
_IANA_ZONE = re.compile(r"\s+([A-Z][A-Za-z_]+(?:/[A-Za-z_+-]+)+)$")
_ISO_DATE_TIME = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?")

_FRENCH_MONTHS = {
    "janvier": "Jan", "janv": "Jan", "février": "Feb", "fevrier": "Feb", "févr": "Feb", "fevr": "Feb",
    "fév": "Feb", "fev": "Feb", "mars": "Mar", "avril": "Apr", "avr": "Apr", "mai": "May", "juin": "Jun",
    "juillet": "Jul", "juil": "Jul", "août": "Aug", "aout": "Aug", "septembre": "Sep", "sept": "Sep",
    "octobre": "Oct", "novembre": "Nov", "décembre": "Dec", "decembre": "Dec", "déc": "Dec", "dec": "Dec",
}
_FRENCH_DAYS = frozenset({
    "lundi", "lun", "mardi", "mar", "mercredi", "mer", "jeudi", "jeu", "vendredi", "ven", "samedi", "sam",
    "dimanche", "dim",
})
# Words that say a date is written in French (English shares "mars", "oct", "nov", "dec" and "mar").
_FRENCH_HINT = re.compile(
    r"(?<![a-zà-ÿ])(?:janv(?:ier)?|f[ée]v(?:r(?:ier)?)?|avr(?:il)?|mai|juin|juil(?:let)?|ao[uû]t|septembre"
    r"|octobre|novembre|d[ée]cembre|déc|lun(?:di)?|mardi|mer(?:credi)?|jeu(?:di)?|ven(?:dredi)?|sam(?:edi)?"
    r"|dim(?:anche)?)(?![a-zà-ÿ])",
)
_WORD = re.compile(r"[^\W\d_]+\.?")
# The words of the dates feedparser reads right: English day and month names, the zone names it knows,
# ISO 8601's T and Z. A date with only these words (nearly all: "Tue, 17 Feb 2026 10:00:00 GMT",
# "... +0100", "2026-02-17T10:00:00Z") is left to feedparser after one quick look.
_KNOWN_WORDS = frozenset(
    "mon tue wed thu fri sat sun jan feb mar apr may jun jul aug sep sept oct nov dec "
    "gmt ut utc z t est edt cst cdt mst mdt pst pdt ast adt".split()
)
_LETTERS = re.compile(r"[A-Za-z]+")
_GMT_OFFSET = re.compile(r"(?:GMT|UTC?)\s*[+-]\d")


def parse_feed_date(text: str) -> time.struct_time | None:
    """``text`` as a UTC ``struct_time`` when it is one of the forms feedparser reads wrong, else None."""
    if not _worth_a_look(text):
        return None
    value = " ".join(text.split())
    if _UNIX_TIME.fullmatch(value):
        seconds = int(value) // 1000 if len(value) == 13 else int(value)
        return time.gmtime(seconds)
    french = _FRENCH_HINT.search(value.lower()) is not None
    if french:
        value = _from_french(value)
    body, zone = _split_zone(value)
    if zone is None and not french:
        return None
    naive = _naive_date_time(body, numeric_zone_allowed=zone is None)
    if naive is None:
        return None
    moment, offset = naive
    if isinstance(zone, ZoneInfo):
        try:
            local = datetime(*moment[:6], tzinfo=zone)
        except ValueError:
            return None
        offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
    elif zone is not None:
        offset = zone
    return time.gmtime(calendar.timegm(moment) - offset)


def _worth_a_look(text: str) -> bool:
    """Whether ``text`` may be one of the forms :func:`parse_feed_date` reads (a quick test)."""
    if not text.isascii() or "/" in text or text.strip().isdigit():
        return True
    if any(word.lower() not in _KNOWN_WORDS for word in _LETTERS.findall(text)):
        return True
    return ("GMT" in text or "UT" in text) and _GMT_OFFSET.search(text) is not None


def _from_french(value: str) -> str:
    """French day names dropped and month names in English, so the RFC 822 reader takes the rest."""
    def translate(match: re.Match[str]) -> str:
        word = match.group().rstrip(".")
        if word.lower() in _FRENCH_DAYS:
            return ""
        return _FRENCH_MONTHS.get(word.lower(), word)  # "oct." and "déc." alike lose their dot

    translated = _WORD.sub(translate, value)
    return " ".join(translated.replace(" ,", " ").lstrip(", ").split())


def _split_zone(value: str) -> tuple[str, int | ZoneInfo | None]:
    """(the rest, the zone's offset in seconds or its IANA zone) for a zone feedparser does not read."""
    match = _OFFSET_ZONE.search(value)
    if match is not None:
        sign, hours, minutes = match.groups()
        if int(hours) > 14 or int(minutes or 0) > 59:  # no zone is that far from UTC
            return value, None
        offset = int(hours) * _HOUR + int(minutes or 0) * 60
        return value[:match.start()], -offset if sign == "-" else offset
    match = _NAMED_ZONE.search(value)
    if match is not None and match.group(1) in ZONE_OFFSETS:
        return value[:match.start()], round(ZONE_OFFSETS[match.group(1)] * _HOUR)
    match = _IANA_ZONE.search(value)
    if match is not None:
        zone = zone_named(match.group(1))
        if zone is not None:
            return value[:match.start()], zone
    return value, None


def _naive_date_time(body: str, *, numeric_zone_allowed: bool) -> tuple[tuple[int, ...], int] | None:
    """(year, month, day, hour, minute, second, 0, 0, 0) and the numeric zone written in ``body`` (else 0)."""
    iso = _ISO_DATE_TIME.fullmatch(body.strip())
    if iso is not None:
        year, month, day, hour, minute, second = (int(part or 0) for part in iso.groups())
        offset = 0
    else:
        parsed = parsedate_tz(body) or parsedate_tz(f"{body} 00:00:00")  # a date alone is midnight
        if parsed is None:
            return None
        year, month, day, hour, minute, second = parsed[:6]
        offset = (parsed[9] or 0) if numeric_zone_allowed else 0
    try:
        datetime(year, month, day, hour, minute, min(second, 59))  # a real date and time
    except ValueError:
        return None
    return (year, month, day, hour, minute, second, 0, 0, 0), offset


_registered = False


def register() -> None:
    """Put :func:`parse_feed_date` before feedparser's own date handlers (once per process)."""
    global _registered
    if not _registered:
        feedparser.registerDateHandler(parse_feed_date)
        _registered = True
