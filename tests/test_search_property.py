"""Search results equal a brute-force scan of the decoded entries, for random events and random queries.

The brute force below is written from the documented semantics (sealtrail.search module docstring),
not from the index: exact fields, kind as a dotted prefix, time since (inclusive) until (exclusive),
free words as case- and accent-folded tokens that must all appear, `word*` a prefix.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.search import Query, index_row

START = datetime(2026, 10, 30, 22, 0, tzinfo=UTC)
SPAN = timedelta(days=3)
WORDS = ["alpha", "Beta", "gamma_ray", "Müller", "ÉTÉ", "straße", "x1", "42", "naïve", "root", "prod", "deploy"]
KINDS = ["auth", "auth.failure", "auth.success", "authz", "authz.x", "auth-x", "deploy", "ci.run", "ci.job"]
LABELS = ["alice", "Alice", "bob", "10.0.0.1", "alpha", "Alpha Beta", "acme/web", "svc:a@b", "x" * 70, "prod"]

words = st.sampled_from(WORDS)
text = st.lists(words, min_size=1, max_size=4).map(" ".join) | st.builds(
    lambda a, sep, b: f"{a}{sep}{b}", words, st.sampled_from(["-", ".", "/", "_", " — ", ":"]), words
)
times = st.integers(0, int(SPAN.total_seconds() * 1_000_000)).map(lambda us: START + timedelta(microseconds=us))


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": draw(st.sampled_from(KINDS)),
        "time": draw(times).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "source": {"type": draw(st.sampled_from(["github", "syslog", "api"])), "id": draw(st.sampled_from(LABELS))},
        "outcome": draw(st.sampled_from(["success", "failure", "unknown"])),
    }
    for name, value in (("action", _optional(st.sampled_from(LABELS))), ("env", _optional(st.sampled_from(LABELS)))):
        if (drawn := draw(value)) is not None:
            event[name] = drawn
    actor = {k: v for k in ("id", "name") if (v := draw(_optional(st.sampled_from(LABELS)))) is not None}
    if draw(st.booleans()):
        actor["ip"] = draw(st.sampled_from(["10.0.0.1", "203.0.113.7", "2001:db8::1"]))
    if actor:
        event["actor"] = actor
    target = {k: v for k in ("type", "id", "name") if (v := draw(_optional(st.sampled_from(LABELS)))) is not None}
    if target:
        event["target"] = target
    attrs = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), text | st.integers(-1000, 1000) | st.booleans()))
    if attrs:
        event["attrs"] = attrs
    if draw(st.booleans()):
        event["raw"] = draw(text | st.lists(text, max_size=2))
    return event


@st.composite
def queries(draw: st.DrawFn, events: list[dict[str, Any]]) -> Query:
    """Up to three conditions, their values mostly taken from one of the events so that some match."""
    model = draw(st.sampled_from(events))
    present_times = [datetime.fromisoformat(event["time"]) for event in events]
    moment = st.sampled_from(present_times) | times  # exact event times test the edges
    candidates: dict[str, list[str]] = {
        "source": [model["source"]["type"], model["source"]["id"], "nope"],
        "kind": [model["kind"], model["kind"].split(".")[0], "auth", "authz", "ci"],
        "action": [model.get("action") or "a", *LABELS[:2]],
        "actor": [*(model.get("actor") or {"x": "alice"}).values(), "203.0.113.7", "Alice"],
        "target": [*(model.get("target") or {"x": "bob"}).values(), "acme/web"],
        "outcome": ["success", "failure", "unknown"],
        "env": [model.get("env") or "prod", "Prod"],
    }
    values: dict[str, Any] = {}
    names = [*candidates, "since", "until", "text", "text"]
    for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
        if name in ("since", "until"):
            values[name] = draw(moment)
        elif name == "text":
            texts = _strings(model.get("attrs")) + _strings(model.get("raw"))
            from_event: bool = draw(st.booleans())
            word: str = draw(st.sampled_from(texts)) if texts and from_event else draw(words)
            as_prefix: bool = draw(st.booleans())
            values["text"] = (word[:3] + "*" if len(word) > 3 and as_prefix else word,)
        else:
            values[name] = draw(st.sampled_from(candidates[name]))
    if "since" in values and "until" in values and values["since"] >= values["until"]:
        del values["until"]
    return Query(**values)


# --- the brute force -----------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return re.findall(r"[^\W_]+", "".join(c for c in folded if not unicodedata.combining(c)).casefold())


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def _matches(event: dict[str, Any], query: Query) -> bool:
    def sub(parent: str, child: str) -> Any:
        return (event.get(parent) or {}).get(child)

    moment = datetime.fromisoformat(event["time"])
    kind = event["kind"]
    checks = [
        query.since is None or moment >= query.since,
        query.until is None or moment < query.until,
        query.source is None or query.source in (sub("source", "type"), sub("source", "id")),
        query.kind is None or kind == query.kind or kind.startswith(query.kind + "."),
        query.action is None or event.get("action") == query.action,
        query.actor is None or query.actor in (sub("actor", "id"), sub("actor", "name"), sub("actor", "ip")),
        query.target is None or query.target in (sub("target", "id"), sub("target", "name")),
        query.outcome is None or event.get("outcome") == query.outcome,
        query.env is None or event.get("env") == query.env,
    ]
    if not all(checks):
        return False
    labels = [sub("source", "type"), sub("source", "id"), kind, event.get("action"), event.get("outcome")]
    labels += [sub("actor", k) for k in ("id", "name", "ip")] + [sub("target", k) for k in ("type", "id", "name")]
    labels += [event.get("env")]
    have = {token for text in [*filter(None, labels), *_strings(event.get("attrs")), *_strings(event.get("raw"))]
            for token in _tokens(text)}  # fmt: skip
    for word in query.text:
        wanted = _tokens(word.rstrip("*"))
        if word.endswith("*") and wanted:
            if not any(token.startswith(wanted[-1]) for token in have):
                return False
            wanted = wanted[:-1]
        if not all(token in have for token in wanted):
            return False
    return True


# --- the properties -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.text(max_size=8)
    | st.integers(1 - 2**53, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@given(envelopes(), st.dictionaries(st.text(max_size=4), json_values, max_size=4), st.integers(0, 5000))
@settings(max_examples=200, deadline=None)
def test_the_row_made_when_preparing_is_the_row_of_the_entry(
    event: dict[str, Any], attrs: dict[str, Any], padding: int
) -> None:
    """Prepared events read their row from the envelope; forgetting recomputes it from the entry bytes."""
    event["attrs"] = {**attrs, "pad": "x" * padding}  # past TEXT_MAX the entry path is taken
    prepared = prepare(event)
    assert prepared.index_row is not None
    row = index_row(prepared.entry)
    assert prepared.index_row[:13] == row[:13]
    assert sorted(prepared.index_row[13].split()) == sorted(row[13].split())
    from_json = prepare(orjson.dumps(event))  # JSON input: floats arrive as exact decimal text
    assert from_json.index_row is not None
    assert sorted(from_json.index_row[13].split()) == sorted(index_row(from_json.entry)[13].split())


@given(data=st.data(), events=st.lists(envelopes(), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_search_equals_a_brute_force_scan(data: st.DataObject, events: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = DataDir(Path(tmp) / "log")
        directory.init("property.sealtrail.test/log")
        split = data.draw(st.integers(0, len(events)))  # two batches: two commits
        with directory.open_log(checkpoint_interval=3600) as log:
            log.append([prepare(event) for event in events[:split]])
            log.append([prepare(event) for event in events[split:]])
        store = directory.store()
        try:
            decoded = [(index, orjson.loads(entry)) for index, entry in store.entries(0, len(events))]
            for _ in range(data.draw(st.integers(1, 10))):
                query = data.draw(queries(events))
                page = data.draw(st.integers(1, 7))
                found: list[int] = []
                while hits := store.search(query, after=found[-1] if found else -1, limit=page):
                    found += [hit.index for hit in hits]
                assert found == [index for index, event in decoded if _matches(event, query)], str(query)
        finally:
            store.close()
