"""`sealtrail timestamp ...`: RFC 3161 time-stamps on checkpoints (docs/post-quantum-and-timestamps.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..checkpoint import open_checkpoint, parse_checkpoint
from ..note import NoteError, b64encode, parse_note
from ..timestamp import load_trust, verify_timestamp
from ._common import DirOption, data_dir, fail, key_argument, reported_errors

__all__ = ["app"]

app = typer.Typer(
    help="RFC 3161 time-stamps on checkpoints: check one offline, or save one from a local log.",
    no_args_is_help=True,
)


def _checkpoint_text(note: bytes) -> str:
    """The note text of a signed checkpoint, or the file itself when it is a bare checkpoint text."""
    try:
        text, _ = parse_note(note)
    except NoteError:
        try:
            text = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("the checkpoint file is not UTF-8 text") from None
    parse_checkpoint(text)
    return text


@app.command()
def verify(
    token: Annotated[Path, typer.Argument(help="The time-stamp: a DER TimeStampResp (.tsr) or TimeStampToken.")],
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", help="The checkpoint it is over: a signed checkpoint note (or its text).")
    ],
    ca: Annotated[Path, typer.Option("--ca", help="Root certificate(s) the TSA must chain to (PEM or DER).")],
    tsa_cert: Annotated[
        Path | None, typer.Option("--tsa-cert", help="Accept only this TSA certificate (PEM or DER).")
    ] = None,
    vkey: Annotated[
        str | None, typer.Option("--vkey", help="Also check the checkpoint's signature by this log key (vkey or file).")
    ] = None,
) -> None:
    """Check that TOKEN time-stamps the checkpoint: granted, imprint = SHA-256 of its text, signed by a TSA of --ca.

    Exit 0 and print the time it proves the checkpoint (and every entry in it) existed; otherwise exit 1.
    """
    with reported_errors():
        note = checkpoint.read_bytes()
        text = _checkpoint_text(note)
        if vkey is not None:
            verifier = key_argument(vkey)
            open_checkpoint(note, verifier.name, [verifier])
        info = verify_timestamp(token.read_bytes(), text, load_trust(ca, tsa_cert))
    parsed = parse_checkpoint(text)
    signed = " (log signature verified)" if vkey is not None else ""
    print(
        f"ok: {parsed.origin} size {parsed.size} root {b64encode(parsed.root)}{signed} existed at "
        f"{info.gen_time.isoformat()}, time-stamped by {info.tsa or 'the TSA'} "
        f"(serial {info.serial_number}, policy {info.policy})"
    )


@app.command()
def get(
    dir: DirOption = None,
    size: Annotated[
        int | None, typer.Option("--size", help="Checkpoint size (default: the latest time-stamped one).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the reply here (default: stdout).")] = None,
    checkpoint_out: Annotated[
        Path | None, typer.Option("--checkpoint-out", help="Also write the signed checkpoint it is over here.")
    ] = None,
) -> None:
    """Write the stored time-stamp reply (DER TimeStampResp) of a checkpoint of the local log."""
    with reported_errors():
        store = data_dir(dir).store()
        try:
            if size is None:
                latest = store.latest_timestamp()
                if latest is None:
                    raise fail("no checkpoint of this log has a time-stamp yet ([timestamping] in sealtrail.toml)")
                size = latest[0]
            reply = store.timestamp(size)
            note = store.checkpoint_at(size)
        finally:
            store.close()
        if reply is None or note is None:
            raise fail(f"the checkpoint of size {size} has no time-stamp")
        if checkpoint_out is not None:
            checkpoint_out.write_bytes(note)
        if out is not None:
            out.write_bytes(reply)
    if out is None:
        sys.stdout.buffer.write(reply)
        sys.stdout.buffer.flush()
    print(f"time-stamp of checkpoint {size}: {len(reply)} bytes", file=sys.stderr)
