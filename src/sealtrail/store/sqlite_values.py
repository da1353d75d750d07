"""Bulk INSERTs for the SQLite engine: multi-row VALUES statements, and parameters bound without adaptation.

A multi-row INSERT runs in one statement step per 500 rows; executemany instead
releases and retakes the GIL for every row and crawls when other threads are busy.

For rows at consecutive indices, `insert_values(..., first=N)` numbers the
rows in SQL (`?1+k`), so the caller passes its columns as they are rather
than a tuple per row with the index in it.

On CPython 3.11, the sqlite3 module binds int, float, str and bytearray
directly but sends bytes and None through the adaptation protocol, which
looks up `__adapt__` on a type and formats (then drops) an AttributeError
each time: about 2,000 instructions per parameter. `bind_directly` registers
identity adapters for bytes and None, so a lookup finds them at once; the
values bound are the same objects, so nothing stored changes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["ROWS_PER_STATEMENT", "bind_directly", "insert_values"]

ROWS_PER_STATEMENT = 500

_NOTHING: dict[object, None] = {}
_none = _NOTHING.get
"""The adapter for None: a C callable returning None for any argument, so adapting costs no Python frame."""


def bind_directly() -> None:
    """Bind bytes and None without the adaptation lookups (see the module docstring). Idempotent.

    Adapters are process-wide; these two return their argument, so other users of sqlite3 see no change.
    """
    sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b for an exact bytes object
    sqlite3.register_adapter(type(None), _none)


@lru_cache(maxsize=64)
def _values(width: int, rows: int, numbered: bool) -> str:
    if not numbered:
        row = "(" + ",".join("?" * width) + ")"
        return ",".join([row] * rows)
    rest = ",?" * (width - 1)
    return ",".join([f"(?1+{k}{rest})" for k in range(rows)])


def insert_values(
    conn: sqlite3.Connection, head: str, width: int, params: Sequence[object], *, first: int | None = None
) -> None:
    """Run `head VALUES ...` over `params`, `width` values a row, one statement per 500 rows.

    With `first`, row k goes to index first+k: `head` lists the index column first and `params`
    hold only the other width-1 values of each row.
    """
    if first is None:
        per_statement = ROWS_PER_STATEMENT * width
        for start in range(0, len(params), per_statement):
            chunk = params[start : start + per_statement]
            conn.execute(f"{head} {_values(width, len(chunk) // width, False)}", chunk)
        return
    stride = width - 1
    per_statement = ROWS_PER_STATEMENT * stride
    for start in range(0, len(params), per_statement):
        numbered: list[object] = [first + start // stride]
        numbered.extend(params[start : start + per_statement])
        conn.execute(f"{head} {_values(width, (len(numbered) - 1) // stride, True)}", numbered)
