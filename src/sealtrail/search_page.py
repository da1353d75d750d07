"""Pages of search results read from a stored log: each event with its index, leaf hash and, on request,
a c2sp.org/tlog-proof against the latest checkpoint (then only events that checkpoint covers are returned).

Shared by GET /v1/search and `sealtrail search`; the rows of a CSV export are `SearchResult.csv_row`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from .merkle import leaf_hash
from .note import b64encode
from .search import DEFAULT_LIMIT, MAX_LIMIT, Query, SearchHit, encode_cursor
from .tlogproof import TlogProof
from .view import LogView

__all__ = ["CSV_COLUMNS", "SearchPage", "SearchResult", "search_page", "search_results"]

CSV_COLUMNS = ("index", "leaf_hash", "time", "source", "kind", "action", "outcome", "actor", "target", "env")


@dataclass(frozen=True, slots=True)
class SearchResult:
    index: int
    entry: bytes
    proof: TlogProof | None = None

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.entry)

    def to_json(self) -> dict[str, Any]:
        """{"index", "leaf_hash" (base64), "event" (the entry as stored), "proof"? (tlog-proof text)}."""
        out: dict[str, Any] = {
            "index": self.index,
            "leaf_hash": b64encode(self.leaf_hash),
            "event": orjson.Fragment(self.entry),
        }
        if self.proof is not None:
            out["proof"] = self.proof.encode().decode()
        return out

    def csv_row(self) -> list[str]:
        """The values of CSV_COLUMNS, then the proof when there is one."""
        summary = SearchHit(self.index, self.entry).summary()
        row = [str(self.index), b64encode(self.leaf_hash), *(summary[name] for name in CSV_COLUMNS[2:])]
        if self.proof is not None:
            row.append(self.proof.encode().decode())
        return row


@dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[SearchResult]
    next_cursor: str | None
    """Pass it back for the next page; None when there is none."""
    checkpoint_size: int | None = None
    """The checkpoint the proofs are against, when proofs were asked for."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "results": [result.to_json() for result in self.results],
            "next_cursor": self.next_cursor,
        }
        if self.checkpoint_size is not None:
            out["checkpoint_size"] = self.checkpoint_size
        return out


def _page(view: LogView, query: Query, after: int, limit: int, size: int | None) -> SearchPage:
    hits = view.store.search(query, after=after, before=size, limit=limit + 1)
    more = len(hits) > limit
    hits = hits[:limit]
    results = [
        SearchResult(hit.index, hit.entry, None if size is None else view.tlog_proof(hit.index, size)) for hit in hits
    ]
    return SearchPage(results, encode_cursor(hits[-1].index) if more else None, size)


def search_page(
    view: LogView, query: Query, *, after: int = -1, limit: int = DEFAULT_LIMIT, proofs: bool = False
) -> SearchPage:
    """Up to `limit` (at most MAX_LIMIT) events matching `query` after index `after`, in index order."""
    size = view.latest_checkpoint()[0] if proofs else None
    return _page(view, query, after, max(1, min(limit, MAX_LIMIT)), size)


def search_results(
    view: LogView, query: Query, *, after: int = -1, limit: int | None = None, proofs: bool = False
) -> Iterator[SearchPage]:
    """Pages of every match after `after` (at most `limit` results in all), MAX_LIMIT at a time.

    With proofs, every page is proved against the checkpoint that was latest when the first page was read.
    """
    size = view.latest_checkpoint()[0] if proofs else None
    remaining = limit
    while remaining is None or remaining > 0:
        page = _page(view, query, after, MAX_LIMIT if remaining is None else min(MAX_LIMIT, remaining), size)
        yield page
        if page.next_cursor is None:
            return
        after = page.results[-1].index
        if remaining is not None:
            remaining -= len(page.results)
