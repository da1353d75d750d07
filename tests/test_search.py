"""sealtrail.search: the query syntax, the searchable projection of an event, and the SQL pieces."""

from __future__ import annotations

import pickle
import sqlite3
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _support import devsecops_event
from sealtrail.event import prepare
from sealtrail.search import (
    COLUMNS,
    MAX_TIME_TERMS,
    TEXT_MAX,
    IndexRows,
    Query,
    QueryError,
    decode_cursor,
    encode_cursor,
    fts5_match,
    index_row,
    key_term,
    match_terms,
    parse_query,
    parse_time,
    query_from_params,
    residual_sql,
    text_tokens,
    time_terms,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


# --- the query syntax -----------------------------------------------------------------------


def test_parse_query_reads_filters_quoted_values_and_free_words() -> None:
    query = parse_query('kind:deploy env:prod actor:"Alice Smith" since:2026-11-01 until:24h rollback "disk full"')
    assert query == Query(
        since=datetime(2026, 11, 1, tzinfo=UTC),
        until=query.until,
        kind="deploy",
        env="prod",
        actor="Alice Smith",
        text=("rollback", "disk full"),
    )
    assert query.until is not None and abs(query.until - (datetime.now(UTC) - timedelta(hours=24))) < timedelta(60)


def test_words_that_only_look_like_filters_are_free_text() -> None:
    query = parse_query("https://example.com/x 10:20 Kind:deploy")
    assert query.kind is None
    assert query.text == ("https://example.com/x", "10:20", "Kind:deploy")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind:a kind:b", "kind is given twice"),
        ("actor:", "actor: give a value"),
        ("outcome:ok", "outcome: expected one of success, failure, unknown"),
        ("kind:Auth", "kind: 'Auth' is not a lowercase dotted category"),
        ("since:2026-11-02 until:2026-11-01", "since must be before until"),
        ("since:2026-11-01T10:00:00", "has no time zone"),
        ("since:yesterday", "is not a time"),
        ('actor:"unterminated', "query: No closing quotation"),
        ("env:" + "x" * 1025, "env: expected 1 to 1024 characters"),
    ],
)
def test_bad_queries_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(text)


def test_times_accept_rfc3339_offsets_dates_and_ages() -> None:
    assert parse_time("2026-11-01T10:00:00+02:00") == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    assert parse_time("2026-11-01T10:00:00z") == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert parse_time("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_time("90m", now=NOW) == NOW - timedelta(minutes=90)
    assert parse_time("2w", now=NOW) == NOW - timedelta(days=14)


queries = st.builds(
    Query,
    since=st.none() | st.datetimes(datetime(2020, 1, 1), datetime(2025, 1, 1), timezones=st.just(UTC)),
    until=st.none() | st.datetimes(datetime(2025, 1, 2), datetime(2030, 1, 1), timezones=st.just(UTC)),
    source=st.none() | st.text(min_size=1, max_size=20),
    kind=st.none() | st.from_regex(r"[a-z][a-z0-9_-]{0,5}(\.[a-z0-9_-]{1,5}){0,2}", fullmatch=True),
    actor=st.none() | st.text(min_size=1, max_size=20),
    outcome=st.none() | st.sampled_from(["success", "failure", "unknown"]),
    text=st.lists(st.text(min_size=1, max_size=10).filter(lambda w: ":" not in w), max_size=4).map(tuple),
)


@given(queries)
@settings(max_examples=200, deadline=None)
def test_the_text_form_of_a_query_parses_back_to_it(query: Query) -> None:
    assert parse_query(str(query)) == query


def test_merged_combines_conditions_and_refuses_a_conflict() -> None:
    both = parse_query("kind:deploy failed").merged(query_from_params({"env": "prod", "text": "disk full"}))
    assert both == Query(kind="deploy", env="prod", text=("failed", "disk", "full"))
    assert both.merged(Query(kind="deploy")) == both
    with pytest.raises(QueryError, match="kind is given twice"):
        both.merged(Query(kind="auth"))
    with pytest.raises(QueryError, match="color: not a search field"):
        query_from_params({"color": "red"})


def test_cursors_round_trip_and_strangers_are_refused() -> None:
    assert decode_cursor(encode_cursor(0)) == 0
    assert decode_cursor(encode_cursor(2**62)) == 2**62
    for bad in ("", "abc", encode_cursor(5)[:-2] + "!!", "c3QxOi0x"):  # the last is st1:-1
        with pytest.raises(QueryError, match="cursor"):
            decode_cursor(bad)


# --- the projection of an event --------------------------------------------------------------


def test_text_tokens_fold_case_and_accents_and_split_on_everything_else() -> None:
    assert text_tokens("Failed password for ROOT from 203.0.113.5 port 22") == [
        "failed", "password", "for", "root", "from", "203", "0", "113", "5", "port", "22",
    ]  # fmt: skip
    assert text_tokens("snake_case dave@acme.example") == ["snake", "case", "dave", "acme", "example"]
    assert text_tokens("Müller ÉTÉ Straße naïve") == ["muller", "ete", "strasse", "naive"]
    assert text_tokens("— ... ") == []


def test_key_terms_are_exact_values_and_never_free_text_tokens() -> None:
    assert key_term("u", "alice") == "_u.alice"
    assert key_term("t", "acme/payments-api") == "_t.acme/payments-api"
    hashed = key_term("u", "Alice Smith")
    assert hashed.startswith("_u_") and hashed != key_term("u", "alice smith")
    assert key_term("u", "x" * 65) != key_term("u", "x" * 66)
    assert not any(token.startswith("_") for token in text_tokens("_u.alice __init__"))


def test_index_row_holds_the_columns_and_the_terms_of_an_event() -> None:
    event = prepare(devsecops_event(4))  # sshd failure from syslog
    row = index_row(event.entry)
    assert event.index_row is not None
    assert row[:13] == event.index_row[:13]
    assert sorted(row[13].split()) == sorted(event.index_row[13].split())  # read from the envelope, not the entry
    envelope = orjson.loads(event.entry)
    columns = dict(zip(COLUMNS, row[:13], strict=True))
    assert columns["time"] == micros(datetime.fromisoformat(envelope["time"]))
    assert (columns["source_type"], columns["source_id"]) == ("syslog", "bastion-01")
    assert (columns["kind"], columns["outcome"], columns["env"]) == ("auth.failure", "failure", "prod")
    assert (columns["actor_name"], columns["actor_ip"], columns["actor_id"]) == ("root", envelope["actor"]["ip"], None)
    terms = set(row[13].split())
    hour = envelope["time"][:13].replace("-", "").replace("T", "")
    assert {f"_y{hour[:4]}", f"_m{hour[:6]}", f"_d{hour[:8]}", f"_h{hour}"} <= terms
    assert {"_k.auth", "_k.auth.failure", "_s.syslog", "_s.bastion-01", "_u.root", "_o.failure", "_e.prod"} <= terms
    assert {"failed", "password", "root", "bastion", "prod"} <= terms
    assert str(envelope["attrs"]["port"]) in terms


def test_index_row_reads_attrs_and_raw_strings_and_numbers_up_to_the_bound() -> None:
    entry = orjson.dumps(
        {
            "kind": "ci.job",
            "attrs": {"flag": True, "n": 42, "ratio": 0.5, "tags": ["Alpha", {"deep": "Bravo"}]},
            "raw": "charlie " + "x" * TEXT_MAX + " delta",
        }
    )
    terms = set(index_row(entry)[13].split())
    assert {"42", "0", "5", "alpha", "bravo", "charlie"} <= terms
    assert "true" not in terms and "delta" not in terms  # booleans are no text; delta is past TEXT_MAX
    out_of_line = orjson.dumps({"kind": "ci.job", "raw": {"digest": "sha256:" + "ab" * 32, "size": 9}})
    assert "sha256" not in index_row(out_of_line)[13]


@pytest.mark.parametrize("entry", [b"", b"not json", b"[1, 2]", b'"text"', b'{"kind": 5, "time": "yesterday"}'])
def test_entries_that_are_not_events_index_nothing_searchable(entry: bytes) -> None:
    row = index_row(entry)
    assert row[:13] == (None,) * 13
    assert row[13] == ""


def test_a_time_that_is_not_canonical_gets_no_column_and_no_bucket() -> None:
    for moment in ("2026-11-26T13:24:51Z", "2026-02-30T13:24:51.000000Z", "2026-11-26T24:00:00.000000Z"):
        row = index_row(orjson.dumps({"kind": "deploy", "time": moment}))
        assert row[0] is None
        assert not any(term.startswith(("_y", "_h")) for term in row[13].split())


def test_index_rows_hold_rows_by_column_and_give_them_back() -> None:
    rows = [index_row(prepare(devsecops_event(n)).entry) for n in range(6)]
    columns = IndexRows()
    columns.extend(rows[:4])
    columns.append(rows[4])
    columns.append(None)  # a row left to the store
    assert len(columns) == 6 and len(columns.cells) == 6 * len(COLUMNS)
    assert list(columns) == [*rows[:5], None]
    assert columns[1] == rows[1] and columns[-2] == rows[4] and columns[-1] is None
    assert list(columns[2:4]) == rows[2:4] and len(columns[5:9]) == 1
    assert pickle.loads(pickle.dumps(columns)) == columns
    entries = [prepare(devsecops_event(n)).entry for n in range(6)]
    done = columns.complete(entries)
    assert done[5] == index_row(entries[5]) and list(done)[:5] == rows[:5]
    assert columns[5] is None  # complete() leaves the original as it was
    assert done.complete(entries) is done
    with pytest.raises(ValueError, match="cells for"):
        IndexRows([None], [])


# --- candidates and residual conditions -----------------------------------------------------------


def _hours_of(term: str) -> set[datetime]:
    """The hours a bucket term stands for."""
    digits = term[2:]
    start = datetime.strptime(digits, {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 10: "%Y%m%d%H"}[len(digits)]).replace(
        tzinfo=UTC
    )
    if len(digits) == 4:
        end = start.replace(year=start.year + 1)
    elif len(digits) == 6:
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        end = start + (timedelta(days=1) if len(digits) == 8 else timedelta(hours=1))
    hours = set()
    while start < end:
        hours.add(start)
        start += timedelta(hours=1)
    return hours


@given(
    st.datetimes(datetime(2023, 12, 1), datetime(2026, 3, 1), timezones=st.just(UTC)),
    st.timedeltas(timedelta(microseconds=1), timedelta(days=400)),
)
@settings(max_examples=150, deadline=None)
def test_time_terms_cover_exactly_the_hours_a_range_touches(low: datetime, span: timedelta) -> None:
    high = low + span
    terms = time_terms(micros(low), micros(high))
    if terms is None:
        assert span > timedelta(days=MAX_TIME_TERMS // 4)
        return
    covered = [_hours_of(term) for term in terms]
    union = set().union(*covered)
    assert sum(map(len, covered)) == len(union)  # no hour twice
    hour = low.replace(minute=0, second=0, microsecond=0)
    wanted = set()
    while hour < high:
        wanted.add(hour)
        hour += timedelta(hours=1)
    assert union == wanted


def test_match_terms_uses_the_index_bounds_for_open_and_empty_ranges() -> None:
    bounds = (micros(datetime(2026, 11, 1, tzinfo=UTC)), micros(datetime(2026, 11, 3, 5, tzinfo=UTC)))
    assert match_terms(parse_query("since:2026-10-01"), bounds) == []  # holds every indexed time
    assert match_terms(parse_query("since:2026-11-02"), bounds) == [
        ["_d20261102", "_h2026110300", "_h2026110301", "_h2026110302", "_h2026110303", "_h2026110304", "_h2026110305"]
    ]
    assert match_terms(parse_query("until:2026-10-01"), bounds) is None
    assert match_terms(parse_query("since:2026-10-01"), None) is None
    assert match_terms(parse_query("kind:auth actor:alice pay*"), None) == [["_k.auth"], ["_u.alice"], ["pay*"]]
    assert match_terms(parse_query("bastion-01 --"), None) == [["bastion"], ["01"]]


def test_fts5_match_quotes_terms_and_groups_alternatives() -> None:
    groups = [["_d20261102", "_h2026110300"], ["_u.alice"], ["pay*"]]
    assert fts5_match(groups) == '("_d20261102" OR "_h2026110300") AND ("_u.alice") AND ("pay" *)'


def test_residual_sql_selects_exactly_the_matching_rows() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE TABLE search (idx INTEGER PRIMARY KEY, {', '.join(COLUMNS)})")
    rows: dict[int, dict[str, object]] = {
        0: {"kind": "auth", "actor_name": "alice", "source_type": "github"},
        1: {"kind": "auth.failure", "actor_ip": "alice", "source_id": "github", "time": 10},
        2: {"kind": "authz", "actor_id": "alice", "time": 20},
        3: {"kind": "auth-x", "actor_name": "Alice", "outcome": "failure", "time": 30},
        4: {"kind": "auth.failure.ssh", "target_name": "alice", "env": "prod", "time": 40},
    }
    for idx, values in rows.items():
        conn.execute(
            f"INSERT INTO search (idx, {', '.join(values)}) VALUES (?{', ?' * len(values)})", (idx, *values.values())
        )

    def selected(query: Query) -> list[int]:
        where, params = residual_sql(query)
        return [idx for (idx,) in conn.execute(f"SELECT s.idx FROM search AS s WHERE {where} ORDER BY 1", params)]

    assert selected(Query()) == [0, 1, 2, 3, 4]
    assert selected(Query(kind="auth")) == [0, 1, 4]
    assert selected(Query(kind="auth.failure")) == [1, 4]
    assert selected(Query(actor="alice")) == [0, 1, 2]
    assert selected(Query(target="alice")) == [4]
    assert selected(Query(source="github")) == [0, 1]
    assert selected(Query(outcome="failure", kind="auth")) == []
    since, until = EPOCH + timedelta(microseconds=20), EPOCH + timedelta(microseconds=40)
    assert selected(Query(since=since, until=until)) == [2, 3]
