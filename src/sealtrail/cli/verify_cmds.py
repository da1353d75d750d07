"""Audits: verify (a local log) and verify-proof (an offline tlog-proof)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..note import b64encode
from ..tlogproof import verify_tlog_proof
from ..verify import AuditError, audit_store, default_workers
from ._common import (
    DirOption,
    data_dir,
    fail,
    key_argument,
    mldsa_key_argument,
    progress_bar,
    reported_errors,
)

__all__ = ["register"]

PARALLEL_FROM = 256 * 1024
"""Logs with at least this many entries are audited by several processes."""

VkeyOption = Annotated[str, typer.Option("--vkey", help="The log's verifier key, inline or as a file path.")]


def verify(
    dir: DirOption = None,
    vkey: Annotated[
        str | None,
        typer.Option(
            "--vkey", help="Expected log key (default: the directory's log.vkey; pin it to trust nothing local)."
        ),
    ] = None,
    mldsa_vkey: Annotated[
        str | None,
        typer.Option(
            "--mldsa-vkey",
            help="The log's ML-DSA-44 key (type 0x06), inline or a file, that must sign every checkpoint too "
            "(default: the directory's log-mldsa.vkey, if the log has one).",
        ),
    ] = None,
) -> None:
    """Full audit: rehash every entry, rebuild the tree and its tiles, check every checkpoint.

    Exit 0 if the log is intact; otherwise exit 1 naming the first bad index or checkpoint.
    """
    with reported_errors():
        directory = data_dir(dir)
        verifier = key_argument(vkey) if vkey else directory.verifier()
        mldsa = mldsa_key_argument(mldsa_vkey) if mldsa_vkey else directory.mldsa_verifier()
        required = [] if mldsa is None else [mldsa]
        store = directory.store()
        try:
            size = store.size()
            workers = default_workers() if size >= PARALLEL_FROM else 0
            with progress_bar("verifying", size) as progress:
                report = audit_store(store, verifier, progress, workers=workers, required=required)
        except AuditError as exc:
            raise fail(f"log is NOT intact: {exc}") from None
        finally:
            store.close()
    latest = report.latest
    summary = f"ok: {report.size} entries and {report.checkpoints} checkpoints verified"
    if required:
        summary += " (each signed with Ed25519 and ML-DSA-44)"
    if latest is not None:
        summary += f"; latest checkpoint size {latest.size}, root {b64encode(latest.root)}"
    print(summary)
    if report.redacted:
        print(f"redacted: {report.redaction_summary()}")
    if report.unsigned:
        print(f"note: {report.unsigned} newest entries are not yet covered by a signed checkpoint", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)


def verify_proof(
    proof_file: Annotated[Path, typer.Argument(help="A c2sp.org/tlog-proof file.", exists=False)],
    vkey: VkeyOption,
    entry: Annotated[Path | None, typer.Option("--entry", help="The entry's exact bytes, to check too.")] = None,
    origin: Annotated[str | None, typer.Option("--origin", help="Log origin (default: the vkey's name).")] = None,
    mldsa_vkey: Annotated[
        str | None,
        typer.Option(
            "--mldsa-vkey",
            help="Also require the proof's checkpoint to carry a valid signature by this ML-DSA-44 key, "
            "inline or as a file path.",
        ),
    ] = None,
) -> None:
    """Check a tlog-proof offline: checkpoint signature, inclusion, and the entry bytes if given."""
    with reported_errors():
        verifier = key_argument(vkey)
        required = [mldsa_key_argument(mldsa_vkey)] if mldsa_vkey else []
        data = proof_file.read_bytes()
        if data.endswith(b"\n\n"):  # a stray newline added by copy and paste or `jq -r`
            data = data.rstrip(b"\n") + b"\n"
        entry_bytes = entry.read_bytes() if entry is not None else None
        proof, signed, leaf = verify_tlog_proof(
            data, origin or verifier.name, [verifier], entry_bytes, required=required
        )
    what = "entry" if entry is not None else f"leaf hash {b64encode(leaf)}"
    print(f"ok: {what} is at index {proof.index} of {signed.checkpoint.origin}, size {signed.checkpoint.size}")


def register(app: typer.Typer) -> None:
    app.command()(verify)
    app.command("verify-proof")(verify_proof)
