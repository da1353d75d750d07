"""`sealtrail tiles export|verify`: the static c2sp.org/tlog-tiles form of a log."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..checkpoint import parse_checkpoint
from ..fetch import open_source
from ..note import b64decode_strict, b64encode, parse_note
from ..objectstore import DirectorySink
from ..publish import Publisher
from ..verify import AuditError, TrustedState, verify_tiles_log
from ._common import DirOption, data_dir, fail, key_argument, progress_bar, reported_errors

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
    bundles = plan.bundles - len(published.redacted)
    print(f"exported size {plan.size}: {plan.tiles} tiles and {bundles} entry bundles to {out_dir}")
    if published.redacted:
        print(
            f"skipped {len(published.redacted)} entry bundles that span redacted entries "
            f"(their hash tiles are exported): {', '.join(published.redacted)}",
            file=sys.stderr,
        )


def _load_state(path: Path) -> TrustedState | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return TrustedState(data["origin"], int(data["size"]), b64decode_strict(data["root"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise OSError(f"state file {path} is unreadable ({exc}); move it away to start trusting afresh") from None


def _save_state(path: Path, origin: str, size: int, root: bytes, note: bytes | None) -> None:
    body = {"origin": origin, "size": size, "root": b64encode(root)}
    if note is not None:
        body["checkpoint"] = note.decode()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)


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
) -> None:
    """Verify a tiles log: checkpoint signature, every entry in every tile and the root, consistency with --state."""
    with reported_errors():
        verifier = key_argument(vkey)
        log_origin = origin or verifier.name
        trusted = _load_state(state) if state else None
        tiles = open_source(source, token, endpoint_url)
        try:
            note = tiles.fetch("checkpoint")
            size_hint = parse_checkpoint(parse_note(note)[0]).size if note else 0
            with progress_bar("verifying", size_hint) as progress:
                latest = verify_tiles_log(
                    tiles.fetch,
                    log_origin,
                    verifier,
                    extra_checkpoints=tiles.archived_checkpoints(),
                    state=trusted,
                    progress=progress,
                )
        except AuditError as exc:
            raise fail(f"tiles log is NOT intact: {exc}") from None
        finally:
            tiles.close()
        if state:
            _save_state(state, log_origin, latest.size, latest.root, note)
    print(f"ok: {log_origin} size {latest.size} root {b64encode(latest.root)} verified")
