"""Queries evaluated against decoded envelopes (legal holds, erasure requests).

The syntax and meaning are those of `sealtrail search` (sealtrail.search.parse_query):
`field:value` filters (since, until, source, kind, action, actor, target, outcome,
env; exact and case-sensitive, kind a dotted prefix) and free words (every token
of the word in the event's text; `word*` a prefix), all of which must hold:

    actor:mallory since:2026-10-01        kind:auth source:bastion-01 "Failed password"

Holds and erasures must not depend on a search index being present, current or
complete, so each query is matched here against the decoded entry: the event's
whole text, with no length cap and with an out-of-line raw payload loaded, which
the index leaves out. Relative times (since:7d) count from when the query is parsed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .envelope import value_at
from .search import Query, QueryError, parse_query

__all__ = ["EventQuery", "QueryError", "names_subject"]

Predicate = Callable[[Mapping[str, Any]], bool]

_TEXT_FIELDS = ("source", "kind", "action", "actor", "target", "outcome", "env", "attrs", "raw")
"""What a free word or a subject is looked for in (not id, times, salt or sig)."""


def _strings(value: Any) -> Iterator[str]:
    """Every string and number inside a JSON value."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
_TOKEN = re.compile(r"[^\W_]+")


def _text_tokens(text: str) -> list[str]:
    """Runs of letters and digits, case-folded, accents removed (the search module's definition of a token)."""
    if text.isascii():
        return _ASCII_TOKEN.findall(text.lower())
    folded = unicodedata.normalize("NFKD", text.casefold())
    return _TOKEN.findall("".join(c for c in folded if not unicodedata.combining(c)).casefold())


def _event_time(envelope: Mapping[str, Any]) -> datetime | None:
    value = envelope.get("time")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _tokens(envelope: Mapping[str, Any]) -> set[str]:
    return {token for name in _TEXT_FIELDS for text in _strings(envelope.get(name)) for token in _text_tokens(text)}


def _word_matcher(word: str) -> Callable[[set[str]], bool]:
    prefix = word.endswith("*")
    tokens = _text_tokens(word.rstrip("*") if prefix else word)
    if not tokens:
        return lambda _: True
    exact, last = tokens[:-1], tokens[-1]
    if not prefix:
        return lambda have: all(token in have for token in tokens)
    return lambda have: all(token in have for token in exact) and any(t.startswith(last) for t in have)


def _filters(query: Query) -> list[Predicate]:
    out: list[Predicate] = []
    since, until = query.since, query.until
    if since is not None:
        out.append(lambda env: (t := _event_time(env)) is not None and t >= since)
    if until is not None:
        out.append(lambda env: (t := _event_time(env)) is not None and t < until)
    if (source := query.source) is not None:
        out.append(lambda env: source in (value_at(env, "source", "type"), value_at(env, "source", "id")))
    if (kind := query.kind) is not None:
        out.append(lambda env: isinstance(k := env.get("kind"), str) and (k == kind or k.startswith(kind + ".")))
    if (action := query.action) is not None:
        out.append(lambda env: env.get("action") == action)
    if (actor := query.actor) is not None:
        out.append(lambda env: actor in (value_at(env, "actor", key) for key in ("id", "name", "ip")))
    if (target := query.target) is not None:
        out.append(lambda env: target in (value_at(env, "target", "id"), value_at(env, "target", "name")))
    if (outcome := query.outcome) is not None:
        out.append(lambda env: env.get("outcome") == outcome)
    if (where := query.env) is not None:
        out.append(lambda env: env.get("env") == where)
    return out


@dataclass(frozen=True)
class EventQuery:
    """A parsed query: `matches(envelope)` is true when every condition holds."""

    text: str
    filters: tuple[Predicate, ...] = field(default=(), compare=False, repr=False)
    words: tuple[Callable[[set[str]], bool], ...] = field(default=(), compare=False, repr=False)
    custom: Predicate | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, *, now: datetime | None = None) -> EventQuery:
        query = parse_query(text, now=now)
        if query == Query():
            raise QueryError("the query is empty: give conditions such as actor:alice or kind:auth")
        return cls(text, tuple(_filters(query)), tuple(_word_matcher(word) for word in query.text))

    @property
    def needs_raw(self) -> bool:
        """Whether matching looks inside raw (so an out-of-line raw payload must be loaded first)."""
        return bool(self.words) or self.custom is not None

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        if not all(check(envelope) for check in self.filters):
            return False
        if self.custom is not None and not self.custom(envelope):
            return False
        if self.words:
            have = _tokens(envelope)
            return all(word(have) for word in self.words)
        return True


def names_subject(subject: str) -> EventQuery:
    """Events that name a data subject: as actor (id, name or ip, ignoring case), or as a whole word
    (ignoring case) in any string of the event, raw included: wider than a query, as erasure must be."""
    subject = subject.strip()
    if not subject:
        raise QueryError("the subject to erase is empty")
    folded = subject.casefold()
    pattern = re.compile(r"(?<![0-9A-Za-z_])" + re.escape(subject) + r"(?![0-9A-Za-z_])", re.IGNORECASE)

    def names(env: Mapping[str, Any]) -> bool:
        for child in ("id", "name", "ip"):
            value = value_at(env, "actor", child)
            if isinstance(value, str) and value.casefold() == folded:
                return True
        return any(pattern.search(text) for name in _TEXT_FIELDS for text in _strings(env.get(name)))

    return EventQuery(f"names {subject}", custom=names)
