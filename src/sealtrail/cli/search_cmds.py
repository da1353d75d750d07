"""`sealtrail search`: find events by filters and free text; print them as JSONL, CSV or a table, with proofs."""

from __future__ import annotations

import csv
import os
import shlex
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ..search import FIELDS, QueryError, decode_cursor, parse_query, query_from_params
from ..search_page import CSV_COLUMNS, SearchPage, SearchResult, search_results
from ..view import LogView
from ._common import DirOption, data_dir, fail, progress_bar, reported_errors, stderr

__all__ = ["register"]


class Format(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    table = "table"


def _option(name: str, text: str) -> object:
    return typer.Option(f"--{name}", help=text, show_default=False)


def search(
    words: Annotated[
        list[str] | None, typer.Argument(help="Free words and field:value filters, as in --query.", show_default=False)
    ] = None,
    dir: DirOption = None,
    query: Annotated[
        str | None,
        typer.Option("--query", "-q", help="Query text, e.g. 'kind:deploy env:prod actor:alice since:7d rollback'."),
    ] = None,
    since: Annotated[str | None, _option("since", "From this time: RFC 3339, a date (UTC) or an age like 24h.")] = None,
    until: Annotated[str | None, _option("until", "Before this time (exclusive), as --since.")] = None,
    source: Annotated[str | None, _option("source", "Source type or id, e.g. github or acme-github.")] = None,
    kind: Annotated[str | None, _option("kind", "Kind or dotted prefix: auth matches auth.failure.")] = None,
    action: Annotated[str | None, _option("action", "The source's action, exactly.")] = None,
    actor: Annotated[str | None, _option("actor", "Actor id, name or IP address.")] = None,
    target: Annotated[str | None, _option("target", "Target id or name.")] = None,
    outcome: Annotated[str | None, _option("outcome", "success, failure or unknown.")] = None,
    env: Annotated[str | None, _option("env", "Environment label, e.g. prod.")] = None,
    format: Annotated[
        Format | None,
        typer.Option("--format", "-f", help="jsonl, csv or table (default: table on a terminal, else jsonl)."),
    ] = None,
    with_proofs: Annotated[
        bool,
        typer.Option(
            "--with-proofs", help="Attach a c2sp.org/tlog-proof to each event (only events the checkpoint covers)."
        ),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Stop after N events; 0: all of them.")] = 100,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after a previous search.")] = None,
    reindex: Annotated[
        bool, typer.Option("--reindex", help="Rebuild the search index from the stored entries first.")
    ] = False,
) -> None:
    """Search the log's events: every filter and word must match; results in index order.

    Output: JSONL {"index", "leaf_hash", "event", "proof"?} per line, CSV with the columns
    index, leaf_hash, time, source, kind, action, outcome, actor, target, env (and proof),
    or a table. When more results remain, the cursor to continue with goes to stderr.
    """
    named = dict(zip(FIELDS, (since, until, source, kind, action, actor, target, outcome, env), strict=True))
    text = " ".join(shlex.quote(word) for word in words or [])
    try:
        parsed = parse_query(query or "").merged(parse_query(text))
        parsed = parsed.merged(query_from_params({k: v for k, v in named.items() if v is not None}))
        after = -1 if cursor is None else decode_cursor(cursor)
    except QueryError as exc:
        raise fail(str(exc)) from None
    chosen = format or (Format.table if sys.stdout.isatty() else Format.jsonl)
    with reported_errors():
        store = data_dir(dir).store()
        try:
            if reindex:
                with progress_bar("indexing", store.size()) as advance:
                    count = store.index_for_search(rebuild=True, progress=lambda done, _total: advance(done))
                print(f"indexed {count} events", file=sys.stderr)
            pages = search_results(LogView(store), parsed, after=after, limit=limit or None, proofs=with_proofs)
            try:
                last = _write(pages, chosen, with_proofs)
            except BrokenPipeError:  # the reader (head, less) went away: stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return
        finally:
            store.close()
    if last is not None:
        print(f"more results: --cursor {last}", file=sys.stderr)


def _results(pages: Iterator[SearchPage], cursor: list[str | None]) -> Iterator[SearchResult]:
    for page in pages:
        cursor[0] = page.next_cursor
        yield from page.results


def _write(pages: Iterator[SearchPage], chosen: Format, proofs: bool) -> str | None:
    """Print every result; return the cursor to continue with, if results remain."""
    cursor: list[str | None] = [None]
    results = _results(pages, cursor)
    if chosen is Format.jsonl:
        out = sys.stdout.buffer
        for result in results:
            out.write(orjson.dumps(result.to_json()) + b"\n")
        out.flush()
    elif chosen is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*CSV_COLUMNS, "proof"] if proofs else CSV_COLUMNS)
        for result in results:
            writer.writerow(result.csv_row())
        sys.stdout.flush()
    else:
        table = Table(show_lines=False)
        shown = ("index", "time", "source", "kind", "action", "outcome", "actor", "target", "env")
        for column in shown:
            table.add_column(column, overflow="fold")
        count = 0
        for result in results:
            row = dict(zip(CSV_COLUMNS, result.csv_row(), strict=False))
            table.add_row(*(row[column] for column in shown))
            count += 1
        Console().print(table)
        stderr.print(f"{count} events" + (" with proofs (use --format jsonl or csv to keep them)" if proofs else ""))
    return cursor[0]


def register(app: typer.Typer) -> None:
    app.command()(search)
