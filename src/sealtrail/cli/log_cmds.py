"""Commands that create, feed and read a local log: init, append, checkpoint, prove, entry, pubkey."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from ..event import EventError, PreparedEvent, format_time, prepare
from ..note import b64encode
from ..view import LogView
from ._common import DirOption, data_dir, fail, reported_errors

__all__ = ["register"]


def init(
    origin: Annotated[str, typer.Option("--origin", help="The log's name, e.g. audit.example.com/prod.")],
    dir: DirOption = None,
) -> None:
    """Create a new log and its Ed25519 key; print the verifier key (vkey) to publish."""
    with reported_errors():
        directory = data_dir(dir)
        signer = directory.init(origin)
        with directory.open_log():
            pass  # signs the checkpoint of the empty tree
    print(signer.verifier.vkey)
    print(f"created log {origin} in {directory.path} (key: {directory.skey}, mode 600)", file=sys.stderr)


def _read_events(source: str, default_source: dict[str, str]) -> list[PreparedEvent]:
    """Parse and validate every line before anything is written."""
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    received = format_time(datetime.now(UTC))
    prepared: list[PreparedEvent] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise fail(f"line {number}: malformed JSON ({exc}); nothing was written") from None
        if isinstance(event, dict) and "source" not in event:
            event["source"] = default_source
        try:
            prepared.append(prepare(event, received=received))
        except EventError as exc:
            raise fail(f"line {number}: {exc}; nothing was written") from None
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
    if not source_id:
        raise fail("--source must look like TYPE:ID, e.g. api:deploy-bot")
    with reported_errors():
        prepared = _read_events(file, {"type": source_type, "id": source_id})
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


def pubkey(dir: DirOption = None) -> None:
    """Print the log's verifier key (vkey)."""
    with reported_errors():
        print(data_dir(dir).verifier().vkey)


def register(app: typer.Typer) -> None:
    for command in (init, append, checkpoint, prove, entry, pubkey):
        app.command()(command)
