"""sealtrail.store.sqlite_values: multi-row INSERTs, numbered or not, and parameters bound without adaptation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from sealtrail.store.sqlite_values import ROWS_PER_STATEMENT, bind_directly, insert_values


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE t (idx INTEGER PRIMARY KEY, a, b)")
    yield connection
    connection.close()


def _rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT idx, a, b, typeof(a), typeof(b) FROM t ORDER BY idx").fetchall()


VALUES: list[tuple[object, object]] = [(b"\x00entry\xff", None), (b"", "text"), (7, 2.5), ("label", b"k" * 16)]
TYPES = {bytes: "blob", type(None): "null", str: "text", int: "integer", float: "real"}


@pytest.mark.parametrize("rows", [3, ROWS_PER_STATEMENT, 2 * ROWS_PER_STATEMENT + 7])
def test_numbered_rows_go_to_consecutive_indices_over_several_statements(conn: sqlite3.Connection, rows: int) -> None:
    values = [VALUES[n % len(VALUES)] for n in range(rows)]
    insert_values(conn, "INSERT INTO t(idx, a, b) VALUES", 3, [v for pair in values for v in pair], first=40)
    stored = _rows(conn)
    assert [row[0] for row in stored] == list(range(40, 40 + rows))
    assert [row[1:3] for row in stored] == values
    assert [row[3:] for row in stored] == [(TYPES[type(a)], TYPES[type(b)]) for a, b in values]


def test_unnumbered_rows_carry_their_own_index(conn: sqlite3.Connection) -> None:
    params = [n for index in (9, 3, 700) for n in (index, f"row {index}", None)]
    insert_values(conn, "INSERT INTO t(idx, a, b) VALUES", 3, params)
    assert _rows(conn) == [(3, "row 3", None, "text", "null"), (9, "row 9", None, "text", "null"),
                           (700, "row 700", None, "text", "null")]  # fmt: skip


def test_binding_directly_stores_the_same_values(conn: sqlite3.Connection) -> None:
    bind_directly()
    bind_directly()  # idempotent
    assert sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)](b"x") == b"x"
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
    insert_values(conn, "INSERT INTO t(idx, a, b) VALUES", 3, [v for pair in VALUES for v in pair], first=0)
    stored = _rows(conn)
    assert [row[1:3] for row in stored] == VALUES
    assert [row[3:] for row in stored] == [(TYPES[type(a)], TYPES[type(b)]) for a, b in VALUES]
    assert conn.execute("SELECT ? IS NULL, length(?), ?", (None, b"", bytearray(b"ab"))).fetchone() == (1, 0, b"ab")
