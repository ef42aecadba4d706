"""Exact duplicates and online story clustering: which story an article joins.

Called by the pipeline inside the ingest transaction, right after the article row is written,
in arrival order. The method, in short:

1. An article already in a story (seen again from another feed, or revised) stays there.
2. Identical text (``articles.fingerprint``) under another URL joins that article's story, when the
   story has an article published within the window of this one (as any join).
3. Otherwise the title and lead text become a weighted term vector: accent-folded, lightly stemmed words,
   ``(1 + log tf) * idf`` with document frequencies from the archive so far (kept in
   ``story_df``, counted in memory and written in batches: see ``DocumentFrequencies``), names
   (capitalised words, acronyms) and numbers weighted higher, title words higher. Its rarest
   strongest terms look up recent stories in an inverted index (``story_postings``); each
   candidate is scored by cosine similarity with the story centroid, gated by the
   publication-time window, and the best one at or above the threshold, sharing at least
   ``min_shared`` terms, is joined. An article naming many of the story's people, places and
   organisations (``many_names``) needs a lower score: long reports of one event word it
   differently around the same names.
   A guard against similar-but-different events (another arrest at the same club, another
   quake in the same country): when most of the headline's names are new to a story, a higher
   score is needed, and higher still when the story's own main names are missing from the article.
   A short text (a one-line summary, under ``short_terms`` terms) also needs a higher score: a
   single shared name gives two such texts a high cosine without them being one event.
   Across languages (article and story languages known and different) the score is the
   similarity of names and numbers only.
4. Headline: when an article joins, its title competes with the current headline; the one
   whose title vector is closer to the updated centroid wins (the story's most central title). A title
   in another language than the story's does not compete.

The cost per article is a bounded number of indexed look-ups: it does not grow with the archive.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import sqlite3
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from functools import lru_cache
from heapq import nlargest
from operator import itemgetter

from monitor.models import Article
from monitor.store import stories as story_store
from monitor.timeutil import from_iso, to_iso

log = logging.getLogger(__name__)


@dataclass
class StoryAssignment:
    story_id: int
    created: bool         # a new story was started with this article
    joined: bool          # the article joined an existing story with this call
    source_added: bool    # the story gained an outlet (feed) it did not have before this call
    score: float | None = None  # similarity that decided a join (1.0 for exact duplicates)


@dataclass(frozen=True)
class Tuning:
    """Knobs of the clusterer (tuned on the ECB+ development half only)."""

    threshold: float = 0.30          # cosine with the centroid (time-decayed) needed to join
    many_names: int = 6              # an article naming this many of a story's people, places, bodies ...
    many_names_threshold: float = 0.25  # ... needs only this score (the other guards still apply)
    novel_names: float = 0.5         # share of headline-name weight new to a story that calls for ...
    strict_threshold: float = 0.4    # ... this higher score to join it
    story_names: int = 8             # the story's strongest names checked against the article ...
    missing_names: float = 0.3       # ... when more than this share of their weight is missing too ...
    conflict_threshold: float = 0.5  # ... the score needed is this
    numbers_threshold: float = 0.0   # score needed when the article's main figures are not the story's (0: off)
    cross_language_threshold: float = 0.45  # names-and-numbers cosine needed across languages
    entity_boost: float = 2.0        # weight factor of capitalised names and acronyms
    number_boost: float = 1.5        # weight factor of numbers
    title_boost: float = 1.0         # extra term frequency of a title word
    lead_chars: int = 1500           # characters of summary/content read after the title
    article_terms: int = 100         # strongest terms kept in an article vector
    centroid_terms: int = 100        # strongest terms kept in a story centroid
    probe_terms: int = 8             # rare terms used to look up candidate stories
    post_terms: int = 12             # terms under which an article's story is indexed
    per_term: int = 20               # most recent stories read per probed term
    max_candidates: int = 3          # candidate stories scored per article
    min_overlap: float = 0.1         # probe weight a candidate must share to be scored at all
    max_df_ratio: float = 0.1        # terms in more documents than this are never probed
    time_decay: float = 0.15         # score lost at a gap of one full window
    stem: bool = True                # strip English plural and verb endings
    posting_refresh: timedelta = timedelta(hours=6)  # index entries younger than this are not rewritten
    min_shared: int = 3              # distinct terms an article must share with a story to join it
    min_terms: int = 3               # articles with fewer terms only start stories
    short_terms: int = 30            # an article with fewer terms than this (a one-line summary) ...
    short_threshold: float = 0.4     # ... needs this score to join: one shared name is not enough evidence


_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    said says say told according new one two first last year years may might must shall us its it's
    mr mrs ms dr s t re ve ll d m monday tuesday wednesday thursday friday saturday sunday today yesterday
    tomorrow week weeks day days time times people man woman men women including since around many much
    le la les un une des du de d l et ou en au aux ce ces cet cette qui que quoi dont est sont a ont ete etait
    sur sous dans par pour avec sans plus moins pas ne se sa son ses leur leurs il elle ils elles on nous vous
    je tu y lui eux mais donc car ni comme aussi tres tout tous toute toutes apres avant entre selon depuis
    lundi mardi mercredi jeudi vendredi samedi dimanche hier aujourd hui demain fait faire ans an deux
    """.split()
)
_ACRONYM_DOTS = re.compile(r"\b((?:[A-Z]\.){2,})")
_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = frozenset(".!?:;\n|—–-(")
_SKIPPED_BEFORE_WORD = frozenset(" \t'\"‘’“”«»")


@lru_cache(maxsize=200_000)
def fold(token: str) -> str:
    """Lower-case and strip accents ("Élysée" -> "elysee", "Œuvre" -> "oeuvre")."""
    lowered = token.lower().replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass
class Features:
    """Term counts of one text and which of its terms are names or numbers."""

    counts: dict[str, float]
    names: set[str]
    title_names: set[str]
    title_terms: set[str]


def extract_features(title: str, lead: str, tuning: Tuning) -> Features:
    counts: dict[str, float] = {}
    names: set[str] = set()
    trusted = _trust_case(title)
    _scan(title, counts, names, weight=1.0 + tuning.title_boost, trust_case=trusted, tuning=tuning)
    title_names = set(names)
    title_terms = set(counts)
    _scan(lead, counts, names, weight=1.0, trust_case=True, tuning=tuning)
    if not trusted:  # a Headline Case title: its names are the words the lead capitalises
        title_names = title_terms & names
    return Features(counts, names, title_names, title_terms)


def article_features(article: Article, tuning: Tuning) -> Features:
    """The features ``StoryClusterer.assign`` reads from an article (pure: parser workers compute them
    ahead, off the one writer's path, and pass them in)."""
    return extract_features(article.title, _lead_text(article, tuning), tuning)


def _trust_case(title: str) -> bool:
    """Headline Case (most words capitalised) and ALL-CAPS titles say nothing about names."""
    words = [w for w in _WORD.findall(title) if w[0].isalpha() and len(w) > 3]
    if len(words) < 3:
        return True
    capitalised = sum(1 for w in words if w[0].isupper())
    return capitalised / len(words) < 0.6


def _shouting(words: list[str]) -> bool:
    """Mostly upper-case text: its upper-case words are not acronyms."""
    long_words = upper = 0
    for word in words:
        if len(word) > 3 and word[0].isalpha():
            long_words += 1
            upper += word.isupper()
    return long_words >= 3 and upper / long_words >= 0.6


def _scan(
    text: str, counts: dict[str, float], names: set[str], *, weight: float, trust_case: bool, tuning: Tuning
) -> None:
    """Add the terms of ``text`` to ``counts``; capitalised/acronym/number terms go in ``names``."""
    if not text:
        return
    text = _ACRONYM_DOTS.sub(lambda m: m.group(1).replace(".", ""), text)
    matches = list(_WORD.finditer(text))
    words = [match.group() for match in matches]
    if _shouting(words):
        text = text.lower()
        matches = list(_WORD.finditer(text))
        words = [match.group() for match in matches]
    stemming = tuning.stem
    classify, get, add_name = _classify, counts.get, names.add
    for index, raw in enumerate(words):
        term, kind = classify(raw, stemming)
        if term is None:
            continue
        # figures and acronyms are names; a word is one when capitalised other than to open a sentence
        if kind or (trust_case and raw[0].isupper() and _looks_like_name(text, matches, index)):
            add_name(term)
        counts[term] = get(term, 0.0) + weight


_WORD_KIND, _NUMBER_KIND, _ACRONYM_KIND = 0, 1, 2  # a word's kind is false only for plain words


@lru_cache(maxsize=200_000)
def _classify(raw: str, stemming: bool) -> tuple[str | None, int]:
    """(term, kind) of a word as written; term None for a stop word or a one-letter word.

    Figures keep their digits; acronyms stay upper-case so that "US" is not "us"; other words are
    folded and, with ``stemming``, stemmed. One cached look-up per word: extracting features is on
    every article's path.
    """
    if raw[0].isdigit():
        return fold(raw), _NUMBER_KIND
    if raw.isupper() and len(raw) >= 2:
        return raw, _ACRONYM_KIND
    term = fold(raw)
    if len(term) < 2 or term in _STOPWORDS:
        return None, _WORD_KIND
    return (stem(term) if stemming else term), _WORD_KIND


@lru_cache(maxsize=200_000)
def stem(term: str) -> str:
    """A light suffix stripper (English plurals and verb endings) so that rewrites share terms.

    "es" goes only after s, x, z, ch and sh ("churches" -> "church"; "quakes" loses only its "s"), and a
    final "e" goes too, so that "quake", "quakes", "raised" and "raising" meet ("quak", "rais").
    """
    if len(term) <= 4 or not term.isalpha():
        return term
    base = term
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if term.endswith(suffix) and len(term) - len(suffix) >= 4:
            if suffix == "s" and term.endswith("ss"):
                break
            if suffix == "es" and not term[:-2].endswith(("s", "x", "z", "ch", "sh")):
                continue
            base = term[: len(term) - len(suffix)] + keep
            break
    if base.endswith("e") and len(base) > 4:
        base = base[:-1]
    return base


def _looks_like_name(text: str, matches: list[re.Match[str]], index: int) -> bool:
    """A capitalised word is a name unless it only opens a sentence on its own."""
    if not _opens_sentence(text, matches[index].start()):
        return True
    if index + 1 < len(matches):
        following = matches[index + 1].group()
        gap = text[matches[index].end():matches[index + 1].start()]
        return following[0].isupper() and gap.strip() == ""
    return False


def _opens_sentence(text: str, start: int) -> bool:
    """Is the word at ``start`` the first of its sentence (spaces and quotes skipped backwards)?"""
    position = start - 1
    while position >= 0 and text[position] in _SKIPPED_BEFORE_WORD:
        position -= 1
    return position < 0 or text[position] in _SENTENCE_END


def weigh(features: Features, df: dict[str, int], documents: int, tuning: Tuning) -> dict[str, float]:
    """L2-normalised weights of the strongest ``article_terms`` terms."""
    weights: dict[str, float] = {}
    log, get, names = math.log, df.get, features.names
    numbers, entities = tuning.number_boost, tuning.entity_boost
    for term, tf in features.counts.items():
        idf = log((documents + 1) / (get(term, 0) + 1)) + 1.0
        weight = (1.0 + log(tf)) * idf
        if term in names:
            weight *= numbers if term[0].isdigit() else entities
        weights[term] = weight
    if len(weights) > tuning.article_terms:
        weights = dict(sorted(weights.items(), key=lambda kv: kv[1], reverse=True)[: tuning.article_terms])
    return _normalised(weights)


def cosine(vector: dict[str, float], centroid: dict[str, float], norm: float | None = None) -> float:
    """Cosine of a normalised vector with an unnormalised centroid (of norm ``norm``, if known)."""
    if norm is None:
        norm = math.hypot(*centroid.values())
    if norm == 0.0:
        return 0.0
    small, large = (vector, centroid) if len(vector) <= len(centroid) else (centroid, vector)
    dot = sum(w * large.get(t, 0.0) for t, w in small.items())
    return dot / norm


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    norm = math.hypot(*weights.values())
    if norm == 0.0:
        return {}
    return {t: w / norm for t, w in weights.items()}


def _lead_text(article: Article, tuning: Tuning) -> str:
    lead = article.summary or article.content or ""
    if len(lead) < 200 and article.content and len(article.content) > len(lead):
        lead = article.content
    title = article.title.strip()
    if title and lead.startswith(title):
        lead = lead[len(title):]
    return lead[: tuning.lead_chars]


class DocumentFrequencies:
    """Document frequencies read through an in-memory cache and counted in memory.

    Increments are written to ``story_df`` in batches (every ``flush_every`` documents, and by
    ``flush``, which a poll and the daemon call when they stop), inside the caller's transaction.
    Writing them with every feed's transaction was a large share of a cold poll's page writes:
    each document touches some fifty terms all over the table. These are statistics: a batch
    lost with a rolled back transaction or a killed process, or another process's counts seen
    late (the cache is dropped every ``refresh_every`` documents), only nudges weights.
    """

    def __init__(self, flush_every: int = 1000, refresh_every: int = 20_000) -> None:
        self.flush_every = flush_every
        self.refresh_every = refresh_every
        self._conn: sqlite3.Connection | None = None
        self._known: Counter[str] = Counter()
        self._documents = 0
        self._pending: Counter[str] = Counter()
        self._pending_documents = 0
        self._since_refresh = 0

    def lookup(self, conn: sqlite3.Connection, terms: list[str]) -> tuple[dict[str, int], int]:
        """(df of each term, documents) as of now, this process's unwritten counts included."""
        self._follow(conn)
        missing = [term for term in terms if term not in self._known]
        if missing:
            found = story_store.document_frequencies(conn, missing)
            for term in missing:
                self._known[term] = found.get(term, 0) + self._pending.get(term, 0)
        known = self._known
        return {term: known[term] for term in terms}, self._documents

    def count(self, conn: sqlite3.Connection, terms: list[str]) -> None:
        self._follow(conn)
        self._known.update(terms)  # Counter.update counts a list in C
        self._pending.update(terms)
        self._documents += 1
        self._pending_documents += 1
        self._since_refresh += 1
        if self._pending_documents >= self.flush_every:
            self.flush(conn)

    @property
    def pending(self) -> int:
        """Documents counted in memory and not written yet."""
        return self._pending_documents

    def flush(self, conn: sqlite3.Connection) -> None:
        if self._pending_documents and conn is self._conn:
            story_store.add_document_counts(conn, self._pending, self._pending_documents)
        self._pending = Counter()
        self._pending_documents = 0

    def _follow(self, conn: sqlite3.Connection) -> None:
        """Start over on another connection, and re-read the archive's counts now and then."""
        if conn is not self._conn or self._since_refresh >= self.refresh_every:
            self._reset(conn)

    def _reset(self, conn: sqlite3.Connection) -> None:
        if self._conn is not None and conn is self._conn:
            self.flush(conn)
        self._conn = conn
        self._known = Counter()
        self._pending = Counter()
        self._pending_documents = 0
        self._since_refresh = 0
        self._documents = story_store.document_count(conn)


_MARKS = itertools.count(1)  # marks of clusterer state, unique within the process


class StoryMemory:
    """The clusterer's in-memory copy of recent story state, exact and checked before each article.

    It holds decoded story states and, for each term probed so far, the ``per_term`` newest entries
    of its postings (all of them when the term has fewer): exactly the rows the candidate query
    reads, so candidates are found without SQL. Writes still go to the archive, where other
    processes and later runs find them; the memory only follows them.

    ``sync`` runs at the start of every article, inside its transaction: the memory is dropped
    when another connection has committed (``PRAGMA data_version``), when this connection's last
    transaction rolled back or retention changed story tables (the TEMP mark, see
    ``store.stories.advance_clusterer_mark``), or when the connection is another one. So it never
    answers from state the archive does not hold. Bounded: the least recently used stories go first
    when ``max_states`` are held; the term table is emptied when it holds ``max_terms``.
    """

    def __init__(self, per_term: int, max_terms: int = 50_000, max_states: int = 50_000) -> None:
        self.per_term = per_term
        self.max_terms = max_terms
        self.max_states = max_states
        self._conn: sqlite3.Connection | None = None
        self._version = -1
        self._mark = -1
        # term -> (last_published times, story ids): parallel lists in (time, id) order, oldest first
        self._postings: dict[str, tuple[list[str], list[int]]] = {}
        self._complete: set[str] = set()                 # terms whose every posting is held
        self._states: OrderedDict[int, story_store.StoryState] = OrderedDict()  # least recently used first

    def sync(self, conn: sqlite3.Connection) -> None:
        mark = next(_MARKS)
        if conn is not self._conn or not story_store.advance_clusterer_mark(
            conn, expected=self._mark, version=self._version, new=mark
        ):
            self.clear()
            self._conn = conn
            self._version = story_store.reset_clusterer_mark(conn, mark)
        self._mark = mark

    def clear(self) -> None:
        self._postings.clear()
        self._complete.clear()
        self._states.clear()

    # ------------------------------------------------------------------ candidates

    def candidates(
        self, conn: sqlite3.Connection, weights: dict[str, float], *, since: str, min_overlap: float, limit: int
    ) -> list[int]:
        """What ``store.stories.candidate_stories`` returns, read from memory (each term loaded once)."""
        overlap: dict[int, float] = {}
        get = overlap.get
        postings = self._postings
        for term, weight in weights.items():
            held = postings.get(term)
            if held is None:
                held = self._load(conn, term)
            times, ids = held
            for story_id in ids[bisect_left(times, since):]:  # those published at or after since
                overlap[story_id] = get(story_id, 0.0) + weight
        # The best ``limit`` by (overlap, story id), as the index query orders them; those below
        # min_overlap can only be at the end of that list. nlargest keeps ``limit`` items where a sort
        # of the hundred-odd stories would order them all (a third of this method's time at 100,000 stored).
        ranked = nlargest(limit, zip(overlap.values(), overlap.keys()))
        return [story_id for found, story_id in ranked if found >= min_overlap]

    def _load(self, conn: sqlite3.Connection, term: str) -> tuple[list[str], list[int]]:
        """Read the term's ``per_term`` newest postings (oldest first in memory)."""
        entries = story_store.recent_postings(conn, term, limit=self.per_term)
        entries.reverse()
        if len(self._postings) >= self.max_terms:
            self._postings.clear()
            self._complete.clear()
        held = ([published for published, _ in entries], [story_id for _, story_id in entries])
        self._postings[term] = held
        if len(entries) < self.per_term:
            self._complete.add(term)
        return held

    def post(
        self, conn: sqlite3.Connection, story_id: int, terms: list[str], *, last_published: str, stale_before: str,
        new_story: bool = False,
    ) -> None:
        """``store.stories.post_terms`` for the entries it would add, keeping memory equal to the archive.

        A term where the story has an entry at or after ``stale_before`` gets none. Where memory
        tells, the entry is written without that check in SQL; a term it does not hold is checked there.
        """
        writes = []
        unsure = []
        for term in terms:
            held = self._postings.get(term)
            if held is None:
                (writes if new_story else unsure).append(term)
                continue
            times, ids = held
            if story_id in ids:
                index = ids.index(story_id)  # a story has one entry in memory: its newest
                if times[index] >= stale_before:
                    continue  # fresh enough: nothing is written
                del times[index], ids[index]
            elif not (new_story or term in self._complete or (times and times[0] < stale_before)):
                # The archive may hold an entry of this story older than the held ones, which counts
                # only if at or after stale_before: certain not to be only when even the oldest held
                # entry is older. Unknown: SQL checks, and the term is read again when next probed.
                unsure.append(term)
                del self._postings[term]
                continue
            writes.append(term)
            # In (time, story id) order, as the index reads them.
            index = bisect_right(times, last_published)
            while index and times[index - 1] == last_published and ids[index - 1] > story_id:
                index -= 1
            times.insert(index, last_published)
            ids.insert(index, story_id)
            if len(ids) > self.per_term:
                del times[0], ids[0]
                self._complete.discard(term)
        if writes:
            story_store.post_terms(conn, story_id, writes, last_published=last_published)
        if unsure:
            story_store.post_terms(conn, story_id, unsure, last_published=last_published, stale_before=stale_before)

    # ------------------------------------------------------------------ states

    def remember(self, state: story_store.StoryState) -> None:
        """Hold a state this clusterer just wrote (it equals what a reload would read)."""
        self._hold(state)

    def states(
        self, conn: sqlite3.Connection, story_ids: list[int], cache: story_store.VectorCache
    ) -> list[story_store.StoryState]:
        """The states of ``story_ids`` in that order (missing ids left out), loaded once."""
        held = self._states
        found: dict[int, story_store.StoryState] = {}
        missing = []
        for story_id in story_ids:
            if story_id in held:
                held.move_to_end(story_id)  # recently used: kept longest
                found[story_id] = held[story_id]
            else:
                missing.append(story_id)
        if missing:
            for state in story_store.load_story_states(conn, missing, cache):
                found[state.id] = state
                self._hold(state)
        return [found[story_id] for story_id in story_ids if story_id in found]

    def _hold(self, state: story_store.StoryState) -> None:
        held = self._states
        held[state.id] = state
        held.move_to_end(state.id)
        while len(held) > self.max_states:
            held.popitem(last=False)  # the least recently used


class StoryClusterer:
    """Assigns each new article to a story, online, in arrival order.

    ``window``: an article joins only a story with an article published within ``window`` of its
    own publication time (the config key ``story_window``). ``tuning`` overrides ``Tuning`` fields.
    """

    def __init__(self, window: timedelta = timedelta(days=7), **tuning: float | int | bool) -> None:
        known = {f.name for f in fields(Tuning)}
        unknown = set(tuning) - known
        if unknown:
            raise TypeError(f"unknown tuning parameter(s): {', '.join(sorted(unknown))}")
        self.window = window
        self.tuning = replace(Tuning(), **tuning)  # type: ignore[arg-type]
        self.frequencies = DocumentFrequencies()
        self.vectors = story_store.VectorCache()
        self.memory = StoryMemory(per_term=self.tuning.per_term)

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write the document counts still held in memory (call before closing, if convenient)."""
        self.frequencies.flush(conn)

    # ------------------------------------------------------------------ public

    def assign(
        self,
        conn: sqlite3.Connection,
        article_id: int,
        article: Article,
        feed_name: str,
        *,
        now: datetime | None = None,
        features: Features | None = None,
    ) -> StoryAssignment:
        """The story of ``article`` (row ``article_id``, already written), creating one if needed.

        ``now`` is the arrival time (default ``article.first_seen``); it sets ``updated``.
        ``features``: ``article_features(article, self.tuning)`` computed ahead, if it was.
        """
        arrived = to_iso(now or article.first_seen) or ""
        self.memory.sync(conn)
        existing = story_store.story_of_article(conn, article_id)
        if existing is not None:
            return self._seen_again(conn, existing, article_id, article, feed_name, arrived)

        when = to_iso(article.published) or ""
        published = when or arrived
        since = to_iso(article.published - self.window) or ""
        until = to_iso(article.published + self.window) or ""
        if features is None:
            features = article_features(article, self.tuning)
        if article.fingerprint:
            duplicate_of = story_store.story_by_fingerprint(
                conn, article.fingerprint, article_id=article_id, since=since, until=until
            )
            if duplicate_of is not None:
                copied = self.memory.states(conn, [duplicate_of], self.vectors)[0]
                return self._join_copy(conn, copied, article_id, features, feed_name, arrived, published)

        terms = list(features.counts)
        df, documents = self.frequencies.lookup(conn, terms)
        self.frequencies.count(conn, terms)
        vector = weigh(features, df, documents, self.tuning)
        names = {t for t in vector if t in features.names}

        title_vector = _normalised({t: vector[t] for t in features.title_terms if t in vector})

        state: story_store.StoryState | None = None
        score = 0.0
        if len(vector) >= self.tuning.min_terms:
            state, score = self._best_story(conn, vector, names, features.title_names, df, documents, article,
                                            since=since, when=when)

        if state is None:
            created = story_store.create_story(
                conn, headline=article.title, article_id=article_id, feed=feed_name,
                published=published, arrived=arrived, language=article.language, vector=vector, names=names,
                headline_vector=title_vector, cache=self.vectors,
            )
            story_id = created.id
            self.memory.remember(created)
            story_store.add_article(conn, story_id, article_id, feed=feed_name, arrived=arrived, score=None)
            story_store.add_source(conn, story_id, article_id, feed=feed_name, arrived=arrived, touch=False,
                                   new_story=True)
            self.memory.post(conn, story_id, self._posting_terms(vector), last_published=published,
                             stale_before=published, new_story=True)
            log.debug("story created story=%s article=%s feed=%s", story_id, article_id, feed_name)
            return StoryAssignment(story_id, created=True, joined=False, source_added=True)

        self._join(conn, state, article_id, article, feed_name, vector, names, title_vector, arrived, published,
                   score=score)
        return self._record_join(conn, state.id, article_id, feed_name, arrived, score)

    # ------------------------------------------------------------------ steps

    def _join_copy(
        self, conn: sqlite3.Connection, state: story_store.StoryState, article_id: int, features: Features,
        feed: str, arrived: str, published: str,
    ) -> StoryAssignment:
        """The same text as an article of ``state`` (same fingerprint) joins it with score 1.0.

        The centroid stands for the story's distinct texts, so it and the headline stay as they are; the
        story's count and span change. The copy's terms are the original's, already in the story's
        index: they are posted again only when the copy moves the story's last publication time.
        """
        terms = list(features.counts)
        moves_on = published > state.last_published
        if moves_on:
            df, documents = self.frequencies.lookup(conn, terms)
        self.frequencies.count(conn, terms)
        state.article_count += 1
        self._extend_span(state, feed, published)
        story_store.update_story(conn, state, arrived=arrived, cache=self.vectors, vector_changed=False)
        if moves_on:
            self._post(conn, state, weigh(features, df, documents, self.tuning))
        return self._record_join(conn, state.id, article_id, feed, arrived, 1.0)

    @staticmethod
    def _record_join(
        conn: sqlite3.Connection, story_id: int, article_id: int, feed: str, arrived: str, score: float
    ) -> StoryAssignment:
        """The rows that make a joined article one of the story's (its own row is written already)."""
        story_store.add_article(conn, story_id, article_id, feed=feed, arrived=arrived, score=score)
        added = story_store.add_source(conn, story_id, article_id, feed=feed, arrived=arrived, touch=False)
        log.debug("story joined story=%s article=%s feed=%s score=%.3f", story_id, article_id, feed, score)
        return StoryAssignment(story_id, created=False, joined=True, source_added=added, score=score)

    def _seen_again(
        self, conn: sqlite3.Connection, story_id: int, article_id: int, article: Article, feed: str, arrived: str
    ) -> StoryAssignment:
        """Same article again (another feed, or revised): it stays; a revised headline follows."""
        added = story_store.add_source(conn, story_id, article_id, feed=feed, arrived=arrived)
        state = self.memory.states(conn, [story_id], self.vectors)[0]
        if state.headline_article_id == article_id and article.title and state.headline != article.title:
            state.headline = article.title
            story_store.update_story(conn, state, arrived=arrived, cache=self.vectors)
        return StoryAssignment(story_id, created=False, joined=False, source_added=added)

    def _best_story(
        self,
        conn: sqlite3.Connection,
        vector: dict[str, float],
        names: set[str],
        title_names: set[str],
        df: dict[str, int],
        documents: int,
        article: Article,
        *,
        since: str,
        when: str,
    ) -> tuple[story_store.StoryState | None, float]:
        probes = self._probe_terms(vector, df, documents)
        candidates = self.memory.candidates(
            conn, {term: vector[term] for term in probes}, since=since, min_overlap=self.tuning.min_overlap,
            limit=self.tuning.max_candidates,
        )
        states = self.memory.states(conn, candidates, self.vectors)
        best, best_score = None, 0.0
        for state in states:
            score = self._score(vector, names, title_names, state, article, when)
            if score > 0.0 and score > best_score:
                best, best_score = state, score
        return best, best_score  # (None, 0.0) when no candidate may be joined

    def _score(
        self,
        vector: dict[str, float],
        names: set[str],
        title_names: set[str],
        state: story_store.StoryState,
        article: Article,
        when: str,
    ) -> float:
        """The article's score against one story, 0.0 when it must not join it.

        Same language: cosine with the centroid, time-decayed, at least ``min_shared`` shared terms,
        and the name-conflict guard. Across languages: cosine of names and numbers only.
        """
        gap = self._gap(article.published, state, when)
        if gap is None:
            return 0.0
        decay = 1.0 - self.tuning.time_decay * gap
        across = _other_language(article.language, state.language)
        if across:
            if self._name_similarity(vector, names, state) >= self.tuning.cross_language_threshold:
                return self.tuning.threshold  # joins, but ranks below any same-language match
            return 0.0
        centroid = state.vector
        shared = vector.keys() & centroid.keys()  # one set operation gives the dot product's terms and the counts
        if not shared or state.norm == 0.0:
            return 0.0
        score = sum([vector[t] * centroid[t] for t in shared]) / state.norm * decay
        needed = self.tuning.threshold
        if sum(1 for t in shared if t in names and not t[0].isdigit()) >= self.tuning.many_names:
            needed = self.tuning.many_names_threshold
        if score < needed or len(shared) < self.tuning.min_shared:
            return 0.0
        if _novel_title_names(vector, title_names, state) > self.tuning.novel_names:
            needed = max(needed, self.tuning.strict_threshold)
            if _missing_story_names(vector, state, self.tuning.story_names) > self.tuning.missing_names:
                needed = max(needed, self.tuning.conflict_threshold)
        if self.tuning.numbers_threshold > needed and _numbers_disagree(vector, state.vector):
            needed = self.tuning.numbers_threshold
        if len(vector) < self.tuning.short_terms:
            needed = max(needed, self.tuning.short_threshold)
        return score if score >= needed else 0.0

    def _name_similarity(self, vector: dict[str, float], names: set[str], state: story_store.StoryState) -> float:
        if not names or not state.names:
            return 0.0
        name_vector = _normalised({t: vector[t] for t in names if t in vector})
        name_centroid = {t: w for t, w in state.vector.items() if t in state.names}
        return cosine(name_vector, name_centroid)

    def _gap(self, published: datetime, state: story_store.StoryState, when: str) -> float | None:
        """Distance from ``published`` (``when`` in ISO) to the story's publication span, in windows
        (None: outside the window)."""
        if state.first_published <= when <= state.last_published:
            return 0.0
        edge = state.first_published if when < state.first_published else state.last_published
        edge_time = from_iso(edge) or published
        distance = abs((published - edge_time).total_seconds())
        window = self.window.total_seconds() or 1.0
        if distance > window:
            return None
        return distance / window

    def _join(
        self,
        conn: sqlite3.Connection,
        state: story_store.StoryState,
        article_id: int,
        article: Article,
        feed: str,
        vector: dict[str, float],
        names: set[str],
        title_vector: dict[str, float],
        arrived: str,
        published: str,
        *,
        score: float,
    ) -> None:
        state.article_count += 1
        state.join_count += 1
        state.join_score += score
        centroid = dict(state.vector)
        for term, weight in vector.items():
            centroid[term] = centroid.get(term, 0.0) + weight
        if len(centroid) > self.tuning.centroid_terms:
            centroid = dict(sorted(centroid.items(), key=itemgetter(1), reverse=True)[: self.tuning.centroid_terms])
        state.vector = centroid
        state.norm = math.hypot(*centroid.values())
        state.names = (state.names | names) & centroid.keys()
        self._extend_span(state, feed, published)
        self._choose_headline(state, article_id, article, title_vector)
        story_store.update_story(conn, state, arrived=arrived, cache=self.vectors)
        self._post(conn, state, vector)

    @staticmethod
    def _extend_span(state: story_store.StoryState, feed: str, published: str) -> None:
        if published < state.first_published:
            state.first_published = published
            state.first_seen = published
            state.first_feed = feed
        state.last_published = max(state.last_published, published)

    def _post(self, conn: sqlite3.Connection, state: story_store.StoryState, vector: dict[str, float]) -> None:
        """Index the story under the article's strongest terms (entries fresher than
        ``posting_refresh`` are left as they are)."""
        stale_before = to_iso(from_iso(state.last_published) - self.tuning.posting_refresh)  # type: ignore[operator]
        self.memory.post(conn, state.id, self._posting_terms(vector), last_published=state.last_published,
                         stale_before=stale_before or state.last_published)

    @staticmethod
    def _choose_headline(
        state: story_store.StoryState, article_id: int, article: Article, title_vector: dict[str, float]
    ) -> None:
        """The newcomer's title replaces the headline when it is closer to the updated centroid.

        A title in another language than the story's does not compete: its words are not the story's,
        so the comparison says nothing, and a reader of the story's language keeps a headline they read.
        """
        if not article.title or _other_language(article.language, state.language):
            return
        challenger = cosine(title_vector, state.vector, state.norm)
        if not state.headline or challenger > cosine(state.headline_vector, state.vector, state.norm):
            state.headline, state.headline_article_id = article.title, article_id
            state.headline_vector = title_vector

    def _probe_terms(self, vector: dict[str, float], df: dict[str, int], documents: int) -> list[str]:
        limit = max(2.0, self.tuning.max_df_ratio * documents)
        usable = [t for t in vector if df.get(t, 0) <= limit]
        usable.sort(key=lambda t: vector[t], reverse=True)
        return usable[: self.tuning.probe_terms]

    def _posting_terms(self, vector: dict[str, float]) -> list[str]:
        ordered = sorted(vector, key=lambda t: vector[t], reverse=True)
        return ordered[: self.tuning.post_terms]


def _novel_title_names(vector: dict[str, float], title_names: set[str], state: story_store.StoryState) -> float:
    """Share of the weight of the headline's names that the story has never mentioned.

    A report of a different event of the same kind names other people or places in its headline
    (another player arrested, another town flooded): that is the trap this guards. Figures are
    left out: a follow-up brings new ones (a toll that rises, an age, a score, a date) and
    ``_numbers_disagree`` is the figures' own check.
    """
    total = novel = 0.0
    for term in title_names:
        if term[0].isdigit():
            continue
        weight = vector.get(term, 0.0)
        total += weight
        if term not in state.vector:
            novel += weight
    return novel / total if total else 0.0


def _missing_story_names(vector: dict[str, float], state: story_store.StoryState, count: int) -> float:
    """Share of the weight of the story's ``count`` strongest names that the article does not mention."""
    strongest = sorted((t for t in state.names if t in state.vector), key=state.vector.__getitem__, reverse=True)
    strongest = strongest[:count]
    total = sum(state.vector[t] for t in strongest)
    missing = sum(state.vector[t] for t in strongest if t not in vector)
    return missing / total if total else 0.0


def _numbers_disagree(vector: dict[str, float], centroid: dict[str, float], count: int = 4) -> bool:
    """Both mention figures (ages, scores, tolls, dates) but the article's strongest are not the story's."""
    numbers = sorted((t for t in vector if t[0].isdigit() and len(t) >= 2), key=vector.__getitem__, reverse=True)
    if not numbers or not any(t[0].isdigit() and len(t) >= 2 for t in centroid):
        return False
    return not any(t in centroid for t in numbers[:count])


def _other_language(language: str | None, story_language: str | None) -> bool:
    """Both languages known and different (``fr-FR`` and ``fr`` are one language)."""
    return bool(language and story_language and _lang(language) != _lang(story_language))


@lru_cache(maxsize=1024)
def _lang(code: str) -> str:
    return code.split("-")[0].split("_")[0].lower()
