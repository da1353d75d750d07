"""`sealtrail tiles export|verify`: the static c2sp.org/tlog-tiles form of a log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..checkpoint import parse_checkpoint
from ..fetch import open_source
from ..monitor import TrustedCheckpoint, load_state, save_state
from ..note import b64encode, parse_note
from ..objectstore import DirectorySink
from ..publish import Publisher
from ..verify import AuditError, AuditReport, TrustedState, verify_tiles_log
from ._common import (
    DirOption,
    data_dir,
    fail,
    key_argument,
    mldsa_key_argument,
    progress_bar,
    reported_errors,
)

__all__ = ["app"]

app = typer.Typer(help="Export or verify a log as c2sp.org/tlog-tiles (checkpoint, hash tiles, entry bundles).")


@app.command("export")
def export(
    out_dir: Annotated[Path, typer.Argument(help="Directory to write the tiles log into.")],
    dir: DirOption = None,
) -> None:
    """Write checkpoint, hash tiles and entry bundles, with the partial tiles of every older checkpoint."""
    with reported_errors():
        store = data_dir(dir).store()
        try:
            publisher = Publisher(store, DirectorySink(out_dir))
            plan = publisher.plan()
            with progress_bar("exporting", plan.total) as progress:
                published = publisher.execute(plan, progress)
        finally:
            store.close()
    print(f"exported size {plan.size}: {plan.tiles} tiles and {plan.bundles} entry bundles to {out_dir}")
    if published.redacted:
        print(
            f"{len(published.redacted)} entry bundles span redacted entries: written under redacted/ with those "
            f"entries empty (`sealtrail tiles verify` checks them; other tlog-tiles clients see them missing): "
            f"{', '.join(published.redacted)}",
            file=sys.stderr,
        )


@app.command("verify")
def verify(
    source: Annotated[str, typer.Argument(help="Directory, http(s) URL prefix or s3://bucket/prefix of a tiles log.")],
    vkey: Annotated[str, typer.Option("--vkey", help="The log's verifier key, inline or as a file path.")],
    state: Annotated[
        Path | None, typer.Option("--state", help="JSON file remembering the last verified checkpoint.")
    ] = None,
    origin: Annotated[str | None, typer.Option("--origin", help="Log origin (default: the vkey's name).")] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="SEALTRAIL_TOKEN", help="Read token for a private sealtrail server.")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="S3 endpoint for s3:// sources (default: $AWS_ENDPOINT_URL, else AWS)."),
    ] = None,
    mldsa_vkey: Annotated[
        str | None,
        typer.Option(
            "--mldsa-vkey",
            help="Also require every checkpoint to carry a valid signature by this ML-DSA-44 key (a log made with "
            "`init --pq`; `sealtrail pubkey --pq` prints it), inline or as a file path.",
        ),
    ] = None,
) -> None:
    """Verify a tiles log: checkpoint signature, every entry in every tile and the root, consistency with --state."""
    with reported_errors():
        verifier = key_argument(vkey)
        required = [mldsa_key_argument(mldsa_vkey)] if mldsa_vkey else []
        log_origin = origin or verifier.name
        seen = load_state(state, log_origin, verifier) if state else None
        trusted = TrustedState(log_origin, seen.checkpoint.size, seen.checkpoint.root) if seen else None
        tiles = open_source(source, token, endpoint_url)
        try:
            note = tiles.fetch("checkpoint")
            size_hint = parse_checkpoint(parse_note(note)[0]).size if note else 0

            def fetch(path: str) -> bytes | None:
                """The source, with the checkpoint read once: the one verified is the one kept in --state."""
                return note if path == "checkpoint" else tiles.fetch(path)

            report = AuditReport()
            with progress_bar("verifying", size_hint) as progress:
                latest = verify_tiles_log(
                    fetch,
                    log_origin,
                    verifier,
                    extra_checkpoints=tiles.archived_checkpoints(),
                    state=trusted,
                    progress=progress,
                    report=report,
                    required=required,
                )
        except AuditError as exc:
            raise fail(f"tiles log is NOT intact: {exc}") from None
        finally:
            tiles.close()
        if state:
            save_state(state, TrustedCheckpoint(latest, note))
    signed = " (each checkpoint signed with Ed25519 and ML-DSA-44)" if required else ""
    print(f"ok: {log_origin} size {latest.size} root {b64encode(latest.root)} verified{signed}")
    if report.redacted:
        print(f"redacted: {report.redaction_summary()}")
