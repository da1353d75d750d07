"""`sealtrail report`: a compliance report for a period, resting on one named checkpoint."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer

from ..datadir import DataDir
from ..note import parse_note
from ..report import PRODUCTION, Integrity, build_report, parse_instant
from ..report_render import FORMATS, render
from ..store.sqlite import SqliteStore
from ..verify import AuditError, audit_store, default_workers
from ..view import LogView
from ._common import DirOption, data_dir, fail, progress_bar, reported_errors
from .verify_cmds import PARALLEL_FROM

__all__ = ["register"]

T = TypeVar("T")


def report(
    since: Annotated[
        str | None, typer.Option("--from", help="Start of the period (date or RFC 3339 time; default: 30 days ago).")
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="End of the period, exclusive (default: now).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    production: Annotated[
        str, typer.Option("--production-env", help="Comma-separated env labels that count as production.")
    ] = ",".join(sorted(PRODUCTION)),
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Run a full verification first and report its result.")
    ] = True,
    dir: DirOption = None,
) -> None:
    """Changes and approvals, production deploys, access changes, failed logins, and integrity status.

    The report rests on the latest checkpoint that met the witness policy (else the latest one), names it, and
    gives the log index of every row, so its figures can be re-derived.
    """
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}")
    with reported_errors():
        now = datetime.now(UTC)
        start = parse_instant(since) if since else parse_instant((now - timedelta(days=30)).isoformat())
        end = parse_instant(until) if until else parse_instant(now.isoformat())
        if start >= end:
            raise ValueError("--from must be before --to")
        directory = data_dir(dir)
        store = directory.store()
        try:
            with store.snapshot():
                witnessed = store.latest_witnessed()  # rest on the latest checkpoint the witnesses vouch for
                size, note = LogView(store).checkpoint(witnessed[0] if witnessed else None)
                integrity = _integrity(directory, store, size, note, verify, now)
                integrity.witness_policy = witnessed[1] if witnessed else None
                with progress_bar("reading", size) as progress:
                    entries = ((i, orjson.loads(entry)) for i, entry in store.entries(0, size))
                    result = build_report(
                        _counted(entries, progress),
                        since=start,
                        until=end,
                        integrity=integrity,
                        generated=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        production=frozenset(p.strip().lower() for p in production.split(",") if p.strip()),
                    )
        finally:
            store.close()
        rendered = render(result, fmt)
        if output is None:
            sys.stdout.write(rendered)
        else:
            output.write_text(rendered)
    if integrity.verified is False:
        raise fail(f"the log failed verification: {integrity.verify_detail} (the report says so)")


def _integrity(
    directory: DataDir, store: SqliteStore, size: int, note: bytes, verify: bool, now: datetime
) -> Integrity:
    """The checkpoint the report rests on, its cosigners, and (with `verify`) a full audit's result."""
    verified: bool | None = None
    detail = ""
    if verify:
        workers = default_workers() if store.size() >= PARALLEL_FROM else 0
        try:
            with progress_bar("verifying", store.size()) as progress:
                audit = audit_store(store, directory.verifier(), progress, workers=workers)
            verified = True
            detail = f"{audit.size} entries and {audit.checkpoints} checkpoints at {now:%Y-%m-%dT%H:%M:%SZ}"
        except AuditError as exc:
            verified, detail = False, str(exc)
    text, signatures = parse_note(note)
    origin, _, root = text.splitlines()[:3]
    return Integrity(
        origin=origin,
        size=size,
        root=root,
        checkpoint=note.decode(),
        cosigners=sorted({sig.name for sig in signatures if sig.name != origin}),
        verified=verified,
        verify_detail=detail,
    )


def _counted(entries: Iterable[T], progress: Callable[[int], None]) -> Iterator[T]:
    for done, item in enumerate(entries, start=1):
        if done % 4096 == 0:
            progress(done)
        yield item


def register(app: typer.Typer) -> None:
    app.command()(report)
