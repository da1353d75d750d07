"""`sealtrail evidence export|verify`: bundles of events with proofs that an auditor checks offline."""

from __future__ import annotations

import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ..cosignature import parse_witness_key
from ..evidence import (
    EvidenceError,
    EvidenceItem,
    assemble_bundle,
    blob_digests,
    verify_zip,
    write_zip,
)
from ..note import b64encode
from ..search import parse_query
from ..store.sqlite import SqliteStore
from ..view import LogView
from ..witnessing import parse_witnessing
from ._common import DirOption, data_dir, fail, key_text, progress_bar, reported_errors

__all__ = ["app"]

_PAGE = 1000

app = typer.Typer(
    help="Evidence bundles for auditors: events, their proofs, one checkpoint, the keys; checked offline."
)


def _select(store: SqliteStore, query: str | None, indices: list[int], size: int) -> list[int]:
    """The explicit indices plus every event the search query finds, all below `size`."""
    chosen = set(indices)
    for index in chosen:
        if not 0 <= index < size:
            raise ValueError(f"index {index} is not covered by the checkpoint of size {size}")
    if query is not None:
        parsed = parse_query(query)
        after = -1
        while True:
            hits = store.search(parsed, after=after, before=size, limit=_PAGE)
            chosen.update(hit.index for hit in hits)
            if len(hits) < _PAGE:
                break
            after = hits[-1].index
    return sorted(chosen)


@app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="The zip file to write.")],
    query: Annotated[
        str | None,
        typer.Option("--query", "-q", help="Search query choosing events, e.g. 'actor:alice kind:deploy'."),
    ] = None,
    index: Annotated[list[int] | None, typer.Option("--index", "-i", help="An entry to include (repeatable).")] = None,
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            help="Prove against the checkpoint of this size (default: the latest that met the witness policy).",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="sealtrail.toml: its [witnessing] keys go into the bundle.")
    ] = None,
    witness: Annotated[
        list[str] | None, typer.Option("--witness", help="A witness vkey to include (repeatable).")
    ] = None,
    dir: DirOption = None,
) -> None:
    """Write OUT.zip: matching events, a tlog-proof for each against one checkpoint, the keys, and a README.

    The checkpoint carries the witness cosignatures the log kept for it.
    """
    if query is None and not index:
        raise fail("choose events with --query and/or --index")
    with reported_errors():
        witness_vkeys = _witness_keys(config, witness or [])
        directory = data_dir(dir)
        store = directory.store()
        try:
            view = LogView(store)
            with store.snapshot():
                if size is None:
                    witnessed = store.latest_witnessed()
                    if witnessed is None:
                        print("warning: no checkpoint has met a witness policy; using the latest", file=sys.stderr)
                    size = witnessed[0] if witnessed is not None else None
                size, note = view.checkpoint(size)
                chosen = _select(store, query, list(index or ()), size)
                if not chosen:
                    raise ValueError("no events match; nothing written")
                leaves = view.leaf_hashes(chosen, size)
                items: list[EvidenceItem] = []
                blobs: dict[str, bytes] = {}
                with progress_bar("proving", len(chosen)) as progress:
                    for done, (i, leaf) in enumerate(zip(chosen, leaves, strict=True), start=1):
                        entry = store.entry(i)
                        items.append(EvidenceItem(i, entry, leaf, view.inclusion_proof(i, size)))
                        progress(done)
                for digest in _referenced_blobs(items):
                    blob = store.blob(digest.removeprefix("sha256:"))
                    if blob is not None:
                        blobs[digest] = blob
            vkey = directory.vkey.read_text().strip()
            created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            files = assemble_bundle(
                checkpoint_note=note,
                log_vkey=vkey,
                witness_vkeys=witness_vkeys,
                items=items,
                blobs=blobs,
                query=query,
                created=created,
            )
            write_zip(files, out)
        finally:
            store.close()
    print(f"wrote {out}: {len(items)} events proven against checkpoint size {size}")


def _witness_keys(config: Path | None, extra: list[str]) -> list[str]:
    """Witness vkeys from the config's [witnessing] table and --witness, normalised, once each."""
    keys = []
    if config is not None:
        table = tomllib.loads(config.read_text()).get("witnessing")
        keys += [w.key.vkey for w in parse_witnessing(table).witnesses]
    keys += [parse_witness_key(key_text(v)).vkey for v in extra]
    return list(dict.fromkeys(keys))


def _referenced_blobs(items: list[EvidenceItem]) -> set[str]:
    return {d for item in items if item.entry is not None for d in blob_digests(item.entry)}


@app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="An evidence bundle (zip) written by `evidence export`.")],
    vkey: Annotated[
        str | None,
        typer.Option("--vkey", help="The log key you trust (inline or file); default: the bundled one, warned."),
    ] = None,
    witness: Annotated[
        list[str] | None, typer.Option("--witness", help="A witness vkey you trust (repeatable).")
    ] = None,
    min_cosignatures: Annotated[
        int, typer.Option("--min-cosignatures", help="Witness cosignatures the checkpoint must carry.")
    ] = 0,
) -> None:
    """Check a bundle offline: every file's hash, the checkpoint's signatures, every event's proof.

    Exit 0 if it checks out; otherwise exit 1 naming the file (and entry) at fault.
    """
    with reported_errors():
        trusted = key_text(vkey) if vkey else None
        witnesses = [key_text(w) for w in witness] if witness else None
        try:
            report = verify_zip(
                bundle, trusted_vkey=trusted, trusted_witnesses=witnesses, min_cosignatures=min_cosignatures
            )
        except EvidenceError as exc:
            raise fail(f"evidence does NOT check out: {exc}") from None
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cosigned = f", cosigned by {', '.join(report.cosigners)}" if report.cosigners else ", no witness cosignatures"
    print(
        f"ok: {report.events} events ({report.redacted} redacted) proven in {report.origin} "
        f"size {report.size} root {b64encode(report.root)}{cosigned}"
    )
