"""Commands that create, feed and read a local log: init, append, checkpoint, prove, entry, pubkey."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from ..event import SOURCE_TYPES, PreparedEvent, Source
from ..ingest import LineError, Preparer
from ..note import b64encode
from ..view import LogView
from ._common import DirOption, data_dir, fail, reported_errors

__all__ = ["register"]

PARALLEL_FROM = 20_000
"""Inputs with at least this many lines are prepared in worker processes."""


def init(
    origin: Annotated[str, typer.Option("--origin", help="The log's name, e.g. audit.example.com/prod.")],
    dir: DirOption = None,
    pq: Annotated[
        bool,
        typer.Option("--pq", help="Also make an ML-DSA-44 key (log-mldsa.skey) and sign every checkpoint with it too."),
    ] = False,
) -> None:
    """Create a new log and its Ed25519 key; print the verifier key (vkey) to publish (with --pq, both vkeys)."""
    with reported_errors():
        directory = data_dir(dir)
        signer = directory.init(origin, pq=pq)
        with directory.open_log():
            pass  # signs the checkpoint of the empty tree
        mldsa = directory.mldsa_verifier()
    print(signer.verifier.vkey)
    if mldsa is not None:
        print(mldsa.vkey)
    print(f"created log {origin} in {directory.path} (key: {directory.skey}, mode 600)", file=sys.stderr)


def _read_events(source: str, default_source: Source) -> list[PreparedEvent]:
    """Parse and validate every line before anything is written."""
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    lines = data.split(b"\n")
    prepared: list[PreparedEvent] = []
    try:
        with Preparer(None if len(lines) >= PARALLEL_FROM else 0) as preparer:
            for chunk in preparer.prepare(lines, default_source=default_source):
                prepared.extend(chunk)
    except LineError as exc:
        raise fail(f"{exc}; nothing was written") from None
    return prepared


def append(
    file: Annotated[str, typer.Argument(help="NDJSON file of events, or - for standard input.")] = "-",
    dir: DirOption = None,
    source: Annotated[
        str, typer.Option("--source", help="TYPE:ID for events that carry no source.", show_default=True)
    ] = "api:cli",
) -> None:
    """Append NDJSON events; print one receipt per line: {"index", "leaf_hash", "id"}.

    Every line is validated first: if one is bad, nothing is written.
    """
    source_type, _, source_id = source.partition(":")
    if source_type not in SOURCE_TYPES or not source_id:
        raise fail(f"--source must look like TYPE:ID with TYPE one of {', '.join(sorted(SOURCE_TYPES))}")
    with reported_errors():
        prepared = _read_events(file, Source(type=source_type, id=source_id))  # type: ignore[arg-type]
        with data_dir(dir).open_log() as log:
            receipts = log.append(prepared)
    out = sys.stdout.buffer
    for receipt in receipts:
        out.write(orjson.dumps(receipt.to_json()) + b"\n")
    out.flush()


def checkpoint(dir: DirOption = None) -> None:
    """Print the latest signed checkpoint (a c2sp.org/tlog-checkpoint signed note)."""
    with reported_errors():
        store = data_dir(dir).store()
        try:
            _, note = LogView(store).latest_checkpoint()
        finally:
            store.close()
    sys.stdout.buffer.write(note)


def prove(
    dir: DirOption = None,
    index: Annotated[int | None, typer.Option("--index", help="Entry to prove.")] = None,
    size: Annotated[int | None, typer.Option("--size", help="Checkpoint size (default: latest).")] = None,
    from_size: Annotated[int | None, typer.Option("--from", help="Older tree size.")] = None,
    to_size: Annotated[int | None, typer.Option("--to", help="Newer tree size.")] = None,
) -> None:
    """Inclusion proof (--index I [--size N]) as a c2sp.org/tlog-proof, or consistency proof (--from M --to N)."""
    inclusion = index is not None
    consistency = from_size is not None or to_size is not None
    if inclusion == consistency:
        raise fail("give either --index I [--size N] or --from M --to N")
    if consistency and (from_size is None or to_size is None):
        raise fail("a consistency proof needs both --from and --to")
    with reported_errors():
        store = data_dir(dir).store()
        try:
            view = LogView(store)
            if index is not None:
                output = view.tlog_proof(index, size).encode()
            else:
                assert from_size is not None and to_size is not None
                hashes = view.consistency_proof(from_size, to_size)
                output = "".join(b64encode(h) + "\n" for h in hashes).encode()
        finally:
            store.close()
    sys.stdout.buffer.write(output)


def entry(
    index: Annotated[int, typer.Option("--index", help="Entry index.")],
    dir: DirOption = None,
) -> None:
    """Print the exact leaf bytes of an entry (the canonical JSON that was hashed)."""
    with reported_errors():
        store = data_dir(dir).store()
        try:
            data = LogView(store).entry(index)
        finally:
            store.close()
    sys.stdout.buffer.write(data)


def pubkey(
    dir: DirOption = None,
    pq: Annotated[bool, typer.Option("--pq", help="Print the log's ML-DSA-44 vkey (type 0x06) instead.")] = False,
) -> None:
    """Print the log's verifier key (vkey)."""
    with reported_errors():
        directory = data_dir(dir)
        if not pq:
            print(directory.verifier().vkey)
            return
        mldsa = directory.mldsa_verifier()
        if mldsa is None:
            raise fail(f"the log in {directory.path} has no ML-DSA-44 key (it was not made with `init --pq`)")
        print(mldsa.vkey)


def register(app: typer.Typer) -> None:
    for command in (init, append, checkpoint, prove, entry, pubkey):
        app.command()(command)
