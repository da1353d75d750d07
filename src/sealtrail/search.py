"""Search: the query model and its text syntax, the searchable projection of an event, and the SQL that finds it.

Pure: no I/O. The SQLite engine runs it (sealtrail.store.sqlite_search); any
other engine indexes the same rows and terms.

Query text (`parse_query`): whitespace-separated `field:value` filters and
free words, e.g. `kind:deploy env:prod actor:alice since:2026-11-01 rollback`;
double quotes group a value with spaces (`actor:"Alice Smith"`). Fields:
since (inclusive), until (exclusive), source (type or id), kind (a dotted
prefix: `auth` matches auth and auth.failure, not authz), action, actor (id,
name or ip), target (id or name), outcome, env; all exact and
case-sensitive. A free word matches an event whose text holds every token of
the word (tokens: runs of letters and digits, case- and accent-folded);
`word*` makes its last token a prefix. Every condition must
hold. Results come in index order; a cursor carries the last index returned,
so a page stays stable while the log grows.

Index (`index_row` of the entry bytes; `envelope_row` makes the same row when
an event is prepared, in the preparing process): one row of exact columns
(COLUMNS) for residual checks, and one string of terms for an FTS5 table: the
text tokens plus key terms (`_` + field code, see `key_term`) for each
filterable value and for the year, month, day and hour of the event time.
Terms find candidates in index order; the exact columns decide. Rows and the
set of terms depend only on the entry bytes and VERSION, so they can be
recomputed at any time to remove them again.

Forgetting (for redaction and erasure): `sealtrail.store.sqlite_search.forget(conn, indices, entries)`
deletes the search row and every FTS term of those events, in the caller's
transaction, and merges the FTS index so no segment keeps them. It recomputes
the terms from the entry bytes: pass them (index -> entry), or call it before
the events rows are deleted. It returns the indices it forgot (those with a
search row).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import shlex
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, overload

import msgspec
import orjson

from .merkle import leaf_hash

__all__ = [
    "COLUMNS",
    "DEFAULT_LIMIT",
    "FIELDS",
    "MAX_LIMIT",
    "VERSION",
    "IndexRow",
    "IndexRows",
    "Query",
    "QueryError",
    "SearchHit",
    "decode_cursor",
    "encode_cursor",
    "envelope_row",
    "fts5_match",
    "index_row",
    "key_term",
    "match_terms",
    "parse_query",
    "parse_time",
    "query_from_params",
    "residual_sql",
    "text_tokens",
    "time_terms",
]

VERSION = 1
"""Version of the projection (columns, terms). A store indexed with another version is reindexed."""

COLUMNS = (
    "time", "source_type", "source_id", "kind", "action", "actor_id", "actor_name", "actor_ip",
    "target_type", "target_id", "target_name", "outcome", "env",
)  # fmt: skip
"""The exact columns of a search row, after the index; `time` is integer microseconds since the epoch (UTC)."""

FIELDS = ("since", "until", "source", "kind", "action", "actor", "target", "outcome", "env")
"""Filter names of the query syntax, in canonical order."""

TEXT_MAX = 4096
"""Characters of an event's text considered for free-text search."""
MAX_TIME_TERMS = 256
"""A time range needing more bucket terms than this is checked on the time column alone."""
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_VALUE = 1024
MAX_WORDS = 32

Label = str | None
IndexRow = tuple[int | None, Label, Label, Label, Label, Label, Label, Label, Label, Label, Label, Label, Label, str]
"""The COLUMNS values, then the FTS terms (space-separated)."""

_EMPTY_ROW: IndexRow = (None, None, None, None, None, None, None, None, None, None, None, None, None, "")
_WIDTH = len(COLUMNS)


class IndexRows(Sequence[IndexRow | None]):
    """The search rows of consecutive events, by column: how a preparing process hands them to the sequencer.

    `cells` holds the COLUMNS values of each row in turn (len(COLUMNS) a row), `terms` each row's FTS
    terms: two lists that pickle and bind as they are, rather than a tuple per event. A row may be
    missing (None, its terms None): `complete` makes it from the entry, as index_row does.
    """

    __slots__ = ("cells", "terms")

    def __init__(self, cells: list[Any] | None = None, terms: list[str | None] | None = None) -> None:
        self.cells: list[Any] = [] if cells is None else cells
        self.terms: list[str | None] = [] if terms is None else terms
        if len(self.cells) != _WIDTH * len(self.terms):
            raise ValueError(f"{len(self.cells)} cells for {len(self.terms)} rows of {_WIDTH} columns")

    def append(self, row: IndexRow | None) -> None:
        if row is None:
            self.cells += _EMPTY_ROW[:13]
            self.terms.append(None)
        else:
            self.cells += row[:13]
            self.terms.append(row[13])

    def extend(self, rows: Iterable[IndexRow | None]) -> None:
        if isinstance(rows, IndexRows):
            self.cells += rows.cells
            self.terms += rows.terms
        else:
            for row in rows:
                self.append(row)

    def complete(self, entries: Sequence[bytes]) -> IndexRows:
        """These rows with each missing one made from its entry (index_row); itself if none is missing."""
        if None not in self.terms:
            return self
        if len(entries) != len(self.terms):
            raise ValueError(f"{len(entries)} entries for {len(self.terms)} search rows")
        done = IndexRows(list(self.cells), list(self.terms))
        for at, terms in enumerate(self.terms):
            if terms is None:
                row = index_row(entries[at])
                done.cells[at * _WIDTH : (at + 1) * _WIDTH] = row[:13]
                done.terms[at] = row[13]
        return done

    def __len__(self) -> int:
        return len(self.terms)

    @overload
    def __getitem__(self, index: int) -> IndexRow | None: ...
    @overload
    def __getitem__(self, index: slice) -> IndexRows: ...
    def __getitem__(self, index: int | slice) -> IndexRow | IndexRows | None:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self.terms))
            if step != 1:
                raise ValueError("IndexRows slices are contiguous")
            return IndexRows(self.cells[start * _WIDTH : max(start, stop) * _WIDTH], self.terms[start:stop])
        terms = self.terms[index]
        if terms is None:
            return None
        start = (index % len(self.terms)) * _WIDTH
        row: IndexRow = (*self.cells[start : start + _WIDTH], terms)
        return row

    def __iter__(self) -> Iterator[IndexRow | None]:
        for start, terms in zip(range(0, len(self.cells), _WIDTH), self.terms, strict=True):
            row: IndexRow | None = None if terms is None else (*self.cells[start : start + _WIDTH], terms)
            yield row

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IndexRows):
            return self.cells == other.cells and self.terms == other.terms
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[IndexRows], tuple[list[Any], list[str | None]]]:
        return IndexRows, (self.cells, self.terms)


_OUTCOMES = ("success", "failure", "unknown")
_KIND = re.compile(r"[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*")
_SIMPLE_VALUE = re.compile(r"[A-Za-z0-9._:/@+-]{1,64}")
_WORD = re.compile(r"[^\W_]+")
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_RELATIVE = re.compile(r"(\d{1,9})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class QueryError(ValueError):
    """A query (or cursor) is malformed; the message names the field."""


# --- the projection of an event -------------------------------------------------------


_ASCII_WORDS = bytes(
    (c | 0x20 if chr(c).isalpha() else c) if c < 128 and chr(c).isalnum() else 0x20 for c in range(256)
)


def _words(text: str) -> str:
    """The tokens of `text` (see text_tokens), separated by spaces: what the FTS tokenizer then splits."""
    if text.isascii():
        return text.encode().translate(_ASCII_WORDS).decode()
    return " ".join(text_tokens(text))


def text_tokens(text: str) -> list[str]:
    """Runs of letters and digits, case-folded, with accents removed."""
    if text.isascii():
        return text.encode().translate(_ASCII_WORDS).decode().split()
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    return _WORD.findall(folded)


@lru_cache(maxsize=4096)
def key_term(code: str, value: str) -> str:
    """The FTS term for an exact value of field `code`: readable when the value is short and plain, else hashed.

    Free-text tokens never contain `_`, so key terms cannot collide with them.
    """
    if _SIMPLE_VALUE.fullmatch(value):
        return f"_{code}.{value.lower()}"
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"_{code}_{digest}"


@lru_cache(maxsize=4096)
def _shape(
    source_type: Label, source_id: Label, kind: Label, action: Label, target_type: Label, outcome: Label, env: Label
) -> tuple[tuple[Label, ...], str]:
    """The fields that take few values, and their key terms (so that a batch mostly hits this cache).

    It returns the labels it was first called with: a batch of rows then holds one object per
    distinct value, which pickles once and is read back once.
    """
    terms = [
        key_term(code, value)
        for code, value in (("s", source_type), ("s", source_id), ("a", action), ("o", outcome), ("e", env))
        if value is not None
    ]
    if kind is not None:
        parts = kind.split(".")
        terms += (key_term("k", ".".join(parts[: n + 1])) for n in range(len(parts)))
    return (source_type, source_id, kind, action, target_type, outcome, env), " ".join(terms)


@lru_cache(maxsize=4096)
def _party(code: str, value: str) -> tuple[str, str]:
    """(value, key_term(code, value)), the value being the first object seen (see _shape)."""
    return value, key_term.__wrapped__(code, value)


@lru_cache(maxsize=4096)
def _minute(prefix: str) -> tuple[int, str]:
    """For YYYY-MM-DDTHH:MM: microseconds from the epoch to that minute, and its year, month, day, hour terms."""
    if not prefix.isascii() or prefix[4] + prefix[7] + prefix[10] + prefix[13] != "--T:":
        raise ValueError(prefix)
    day = datetime.strptime(prefix[:10], "%Y-%m-%d").toordinal() - _EPOCH_ORDINAL
    digits = prefix[0:4] + prefix[5:7] + prefix[8:10] + prefix[11:13]
    hour, minute = int(prefix[11:13]), int(prefix[14:16])
    if not (digits + prefix[14:16]).isdigit() or hour > 23 or minute > 59:
        raise ValueError(prefix)
    micros = ((day * 24 + hour) * 60 + minute) * 60_000_000
    return micros, f"_y{digits[:4]} _m{digits[:6]} _d{digits[:8]} _h{digits}"


def _time(text: str) -> tuple[int, str] | None:
    """Microseconds since the epoch and bucket terms of a canonical event time (2026-11-26T13:24:51.123456Z)."""
    if len(text) != 27 or text[16] + text[19] + text[26] != ":.Z":
        return None
    try:
        minute, terms = _minute(text[:16])
        seconds, fraction = int(text[17:19]), int(text[20:26])
    except ValueError:
        return None
    if not 0 <= seconds <= 59 or fraction < 0:
        return None
    return minute + seconds * 1_000_000 + fraction, terms


def _all_leaves(value: Any, out: list[str]) -> None:
    """Append the string and number leaves of a JSON value to `out`."""
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind is str:
            out.append(item)
        elif kind is int or kind is float:
            out.append(str(item))
        elif kind is dict or kind is list:
            _all_leaves(item, out)


class _NotExact(Exception):
    """A value whose text in the entry may differ from its Python value's."""


_EXACT_INT = 2**53


def _exact_leaves(value: Any, out: list[str]) -> None:
    """_all_leaves for values not yet encoded: raises _NotExact at a number the entry may write otherwise."""
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind is str:
            out.append(item)
        elif kind is int and -_EXACT_INT < item < _EXACT_INT:
            out.append(str(item))
        elif kind is dict or kind is list:
            _exact_leaves(item, out)
        elif item is not None and kind is not bool:
            raise _NotExact


def _leaves(value: Any, out: list[str], budget: int) -> int:
    """Append the string and number leaves of a JSON value to `out` until `budget` characters are used."""
    kind = type(value)
    if kind is str:
        out.append(value[:budget])
        return budget - len(value) - 1
    if kind is dict or kind is list:
        for item in value.values() if kind is dict else value:
            budget = _leaves(item, out, budget)
            if budget <= 0:
                break
        return budget
    if kind is int or kind is float:
        text = str(value)
        out.append(text)
        return budget - len(text) - 1
    return budget


def _decode(entry: bytes) -> Any:
    try:
        return orjson.loads(entry)
    except orjson.JSONDecodeError:
        try:  # integers beyond 64 bits, which orjson refuses
            return json.loads(entry)
        except (ValueError, RecursionError):
            return None


class _Party(msgspec.Struct):
    type: Any = None
    id: Any = None
    name: Any = None
    ip: Any = None


class _Searchable(msgspec.Struct):
    """The members of an envelope that are searched; the others are skipped unread."""

    time: Any = None
    source: _Party | None = None
    kind: Any = None
    action: Any = None
    actor: _Party | None = None
    target: _Party | None = None
    outcome: Any = None
    env: Any = None
    attrs: Any = None
    raw: Any = None


_SEARCHABLE = msgspec.json.Decoder(_Searchable)
_NO_PARTY = _Party()


def _label(container: Any, key: str) -> str | None:
    value = container.get(key) if type(container) is dict else None
    return value if type(value) is str else None


def index_row(entry: bytes) -> IndexRow:
    """The search row of an entry: exact columns and FTS terms. Entries that are not event objects index nothing.

    Terms: the time buckets, key terms of every filterable value, then the words of the labels
    and of the string and number leaves of attrs and raw (TEXT_MAX characters in all).
    """
    try:
        event = _SEARCHABLE.decode(entry)
    except (msgspec.DecodeError, RecursionError):  # not an object of the envelope's shape
        return _EMPTY_ROW
    source, actor, target = event.source or _NO_PARTY, event.actor or _NO_PARTY, event.target or _NO_PARTY
    labels: tuple[Any, ...] = (
        source.type, source.id, event.kind, event.action, actor.id, actor.name, actor.ip,
        target.type, target.id, target.name, event.outcome, event.env,
    )  # fmt: skip
    text = [value for value in labels if value is not None]
    try:
        " ".join(text)
    except TypeError:  # not a valid envelope: keep the string labels only
        labels = tuple(value if type(value) is str else None for value in labels)
        text = [value for value in labels if value is not None]
    raw = event.raw
    if type(raw) is dict and raw.keys() == {"digest", "size"}:
        raw = None  # a payload stored out of line: only its digest is in the entry
    leaves = [value for value in (event.attrs, raw) if value is not None]
    if len(entry) < TEXT_MAX:  # then the text is shorter than TEXT_MAX too
        _all_leaves(leaves, text)
    else:
        _leaves(leaves, text, TEXT_MAX - len(" ".join(text)) - 1)
    return _row(labels, event.time, text)


def envelope_row(envelope: Any, entry: bytes) -> IndexRow:
    """index_row(entry) for the completed envelope (sealtrail.event.Envelope) that `entry` encodes,
    read from its fields rather than decoded again (the same terms, perhaps in another order).

    Where the two could differ it is index_row(entry): an entry of TEXT_MAX bytes or more (the cut
    depends on key order), or attrs or raw holding a number other than an integer below 2**53
    (its text in the entry is the RFC 8785 one).
    """
    if len(entry) >= TEXT_MAX:
        return index_row(entry)
    source, actor, target = envelope.source, envelope.actor or _NO_PARTY, envelope.target or _NO_PARTY
    labels = (
        source.type, source.id, envelope.kind, envelope.action, actor.id, actor.name, actor.ip,
        target.type, target.id, target.name, envelope.outcome, envelope.env,
    )  # fmt: skip
    text = list(filter(None, labels))  # labels of a valid envelope are None or non-empty strings
    attrs, raw = envelope.attrs, envelope.raw
    try:
        if attrs:
            _exact_leaves(attrs, text)
        if raw is not None and not (type(raw) is dict and raw.keys() == {"digest", "size"}):
            _exact_leaves([raw], text)
    except _NotExact:
        return index_row(entry)
    return _row(labels, envelope.time, text)


def _row(labels: tuple[Any, ...], moment: Any, text: list[str]) -> IndexRow:
    """The row of string `labels` (COLUMNS[1:]), the event time, and the words of `text`."""
    source_type, source_id, kind, action, actor_id, actor_name, actor_ip, target_type = labels[:8]
    target_id, target_name, outcome, env = labels[8:]
    when = _time(moment) if type(moment) is str else None
    terms = [] if when is None else [when[1]]
    shape, shape_terms = _shape(source_type, source_id, kind, action, target_type, outcome, env)
    terms.append(shape_terms)
    if actor_id is not None:
        actor_id, term = _party("u", actor_id)
        terms.append(term)
    if actor_name is not None:
        actor_name, term = _party("u", actor_name)
        terms.append(term)
    if actor_ip is not None:
        actor_ip, term = _party("u", actor_ip)
        terms.append(term)
    if target_id is not None:
        target_id, term = _party("t", target_id)
        terms.append(term)
    if target_name is not None:
        target_name, term = _party("t", target_name)
        terms.append(term)
    terms.append(_words(" ".join(text)[:TEXT_MAX]))
    source_type, source_id, kind, action, target_type, outcome, env = shape
    row: IndexRow = (
        None if when is None else when[0],
        source_type, source_id, kind, action, actor_id, actor_name, actor_ip,
        target_type, target_id, target_name, outcome, env,
        " ".join(filter(None, terms)),
    )  # fmt: skip
    return row


# --- the query model -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """Conditions that must all hold; None (or no words) means no condition. `str(query)` parses back to it."""

    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    kind: str | None = None
    action: str | None = None
    actor: str | None = None
    target: str | None = None
    outcome: str | None = None
    env: str | None = None
    text: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise QueryError(f"{name}: a time needs a time zone")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise QueryError("since must be before until")
        for name in FIELDS[2:]:
            value = getattr(self, name)
            if value is not None and (not value or len(value) > MAX_VALUE):
                raise QueryError(f"{name}: expected 1 to {MAX_VALUE} characters")
        if self.kind is not None and not _KIND.fullmatch(self.kind):
            raise QueryError(f"kind: {self.kind!r} is not a lowercase dotted category such as auth or auth.failure")
        if self.outcome is not None and self.outcome not in _OUTCOMES:
            raise QueryError(f"outcome: expected one of {', '.join(_OUTCOMES)}, not {self.outcome!r}")
        if len(self.text) > MAX_WORDS:
            raise QueryError(f"at most {MAX_WORDS} free words")

    def merged(self, other: Query) -> Query:
        """Both queries' conditions; QueryError if a field is set in both to different values."""
        changes: dict[str, Any] = {}
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if item.name == "text":
                changes["text"] = mine + theirs
            elif mine is None:
                changes[item.name] = theirs
            elif theirs is not None and theirs != mine:
                raise QueryError(f"{item.name} is given twice ({_format_value(mine)} and {_format_value(theirs)})")
        return replace(self, **changes)

    def __str__(self) -> str:
        parts = [
            f"{name}:{_quote(_format_value(value))}" for name in FIELDS if (value := getattr(self, name)) is not None
        ]
        parts.extend(_quote(word) for word in self.text)
        return " ".join(parts)


def _format_value(value: str | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def _quote(value: str) -> str:
    return value if value and re.fullmatch(r"[^\s\"'\\]+", value) else shlex.quote(value)


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """RFC 3339 with a time zone, a UTC date (2026-11-01), or an age such as 90m, 24h, 7d, 2w (before `now`)."""
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount = int(relative.group(1)) * _UNITS[relative.group(2)]
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=amount)
        except OverflowError:
            raise QueryError(f"{value!r} reaches before year 1") from None
    try:
        if re.fullmatch(r"\d{4}-\d\d-\d\d", value):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise QueryError(f"{value!r} is not a time: use 2026-11-01, 2026-11-01T09:30:00Z or an age like 24h") from None
    if moment.tzinfo is None:
        raise QueryError(f"{value!r} has no time zone (add Z or an offset)")
    return moment


def parse_query(text: str, *, now: datetime | None = None) -> Query:
    """A Query from its text form (see the module docstring); QueryError names what is wrong."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise QueryError(f"query: {exc}") from None
    values: dict[str, Any] = {}
    free: list[str] = []
    for word in words:
        name, colon, value = word.partition(":")
        if not colon or name not in FIELDS:
            free.append(word)
            continue
        if name in values:
            raise QueryError(f"{name} is given twice")
        if not value:
            raise QueryError(f"{name}: give a value ({name}:VALUE)")
        values[name] = parse_time(value, now=now) if name in ("since", "until") else value
    return Query(**values, text=tuple(free))


# --- finding candidates: FTS terms -------------------------------------------------------


def _hour_floor(micros: int) -> datetime:
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.replace(minute=0, second=0, microsecond=0)


def time_terms(low: int, high: int) -> list[str] | None:
    """Bucket terms (years, months, days, hours) covering the times [low, high) in microseconds, whole hours.

    None when more than MAX_TIME_TERMS would be needed; [] when the range is empty.
    """
    if low >= high:
        return []
    try:
        moment = _hour_floor(low)
        end = _hour_floor(high - 1) + timedelta(hours=1)
    except OverflowError:
        return None
    out: list[str] = []
    while moment < end:
        if len(out) >= MAX_TIME_TERMS:
            return None
        step: datetime | None = None
        if moment.hour == 0:
            try:
                if moment.day == 1 and moment.month == 1 and moment.replace(year=moment.year + 1) <= end:
                    step, term = moment.replace(year=moment.year + 1), f"_y{moment:%Y}"
                elif moment.day == 1 and _next_month(moment) <= end:
                    step, term = _next_month(moment), f"_m{moment:%Y%m}"
            except ValueError:  # year 9999
                step = None
            if step is None and moment + timedelta(days=1) <= end:
                step, term = moment + timedelta(days=1), f"_d{moment:%Y%m%d}"
        if step is None:
            step, term = moment + timedelta(hours=1), f"_h{moment:%Y%m%d%H}"
        out.append(term)
        moment = step
    return out


def _next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return moment.replace(year=moment.year + 1, month=1)
    return moment.replace(month=moment.month + 1)


def _micros_of(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_US


def match_terms(query: Query, time_bounds: tuple[int, int] | None) -> list[list[str]] | None:
    """The FTS condition as groups (AND of groups, OR within one; a term ending in `*` is a prefix).

    `time_bounds` are the least and greatest event times indexed (microseconds), or
    None for an empty index. Returns None if no event can match.
    """
    groups: list[list[str]] = []
    if query.since is not None or query.until is not None:
        if time_bounds is None:
            return None
        low = max(time_bounds[0], _micros_of(query.since)) if query.since is not None else time_bounds[0]
        high = min(time_bounds[1] + 1, _micros_of(query.until)) if query.until is not None else time_bounds[1] + 1
        if low >= high:
            return None
        if low > time_bounds[0] or high <= time_bounds[1]:  # else the range holds every indexed time
            buckets = time_terms(low, high)
            if buckets is not None:
                groups.append(buckets)
    for code, value in (
        ("s", query.source), ("k", query.kind), ("a", query.action), ("u", query.actor),
        ("t", query.target), ("o", query.outcome), ("e", query.env),
    ):  # fmt: skip
        if value is not None:
            groups.append([key_term(code, value)])
    for word in query.text:
        prefix = word.endswith("*")
        tokens = text_tokens(word.rstrip("*") if prefix else word)
        groups.extend([token] for token in tokens)
        if prefix and tokens:
            groups[-1] = [tokens[-1] + "*"]
    return groups


def fts5_match(groups: Iterable[Iterable[str]]) -> str:
    """An FTS5 MATCH expression for match_terms groups."""

    def term(text: str) -> str:
        if text.endswith("*"):
            return f'"{text[:-1]}" *'
        return f'"{text}"'

    return " AND ".join("(" + " OR ".join(term(t) for t in group) + ")" for group in groups)


def residual_sql(query: Query, alias: str = "s") -> tuple[str, list[object]]:
    """The exact conditions on the search row `alias` (SQL with ? parameters; "1" when none)."""
    clauses: list[str] = []
    params: list[object] = []
    if query.since is not None:
        clauses.append(f"{alias}.time >= ?")
        params.append(_micros_of(query.since))
    if query.until is not None:
        clauses.append(f"{alias}.time < ?")
        params.append(_micros_of(query.until))
    if query.source is not None:
        clauses.append(f"({alias}.source_type = ? OR {alias}.source_id = ?)")
        params += [query.source, query.source]
    if query.kind is not None:
        # kind = K, or K.<anything>: '/' follows '.' in byte order
        clauses.append(f"({alias}.kind = ? OR ({alias}.kind >= ? AND {alias}.kind < ?))")
        params += [query.kind, query.kind + ".", query.kind + "/"]
    for name, columns in (
        ("action", ("action",)),
        ("actor", ("actor_id", "actor_name", "actor_ip")),
        ("target", ("target_id", "target_name")),
        ("outcome", ("outcome",)),
        ("env", ("env",)),
    ):
        value = getattr(query, name)
        if value is not None:
            clauses.append("(" + " OR ".join(f"{alias}.{column} = ?" for column in columns) + ")")
            params += [value] * len(columns)
    return (" AND ".join(clauses) or "1"), params


# --- results and cursors ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result: where the event sits and its exact entry bytes."""

    index: int
    entry: bytes

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.entry)

    def summary(self) -> dict[str, str]:
        """The CSV/table columns of the event (empty strings where absent)."""
        event = _decode(self.entry)
        event = event if type(event) is dict else {}
        source, actor, target = event.get("source"), event.get("actor"), event.get("target")

        def first(container: Any, *keys: str) -> str:
            return next((found for key in keys if (found := _label(container, key)) is not None), "")

        source_type, source_id = first(source, "type"), first(source, "id")
        return {
            "time": first(event, "time"),
            "source": f"{source_type}:{source_id}" if source_type and source_id else source_type or source_id,
            "kind": first(event, "kind"),
            "action": first(event, "action"),
            "outcome": first(event, "outcome"),
            "actor": first(actor, "name", "id", "ip"),
            "target": first(target, "name", "id"),
            "env": first(event, "env"),
        }


_CURSOR_PREFIX = "st1:"


def encode_cursor(last_index: int) -> str:
    """An opaque token for the page after `last_index`."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_index}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The last index a cursor carries; QueryError if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or len(number) > 19:
        raise QueryError("cursor: not a cursor returned by a previous search")
    return int(number)


def query_from_params(params: Mapping[str, str], *, now: datetime | None = None) -> Query:
    """A Query from named filters (API parameters, CLI options): field -> text; `text` adds free words."""
    values: dict[str, Any] = {}
    for name, value in params.items():
        if name in ("since", "until"):
            values[name] = parse_time(value, now=now)
        elif name == "text":
            values["text"] = tuple(value.split())
        elif name in FIELDS:
            values[name] = value
        else:
            raise QueryError(f"{name}: not a search field (fields: {', '.join(FIELDS)}, text)")
    return Query(**values)
