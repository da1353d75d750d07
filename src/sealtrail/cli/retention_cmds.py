"""`sealtrail retention plan|apply` and `sealtrail erase`: redact event bodies, on the record.

Both work on the data directory whether or not `serve` runs on it: redactions
go through a sequencer in one SQLite transaction each, and a running server's
sequencer picks up the new edge on its next commit.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ..erasure import ErasurePlan, erase, new_request_reference, plan_erasure
from ..query import EventQuery, names_subject
from ..redaction import Committed, index_ranges
from ..retention import RetentionConfig, RetentionPlan, apply_retention, load_retention, plan_retention
from ._common import DirOption, data_dir, fail, progress_bar, reported_errors

__all__ = ["app", "register"]

app = typer.Typer(
    help="Retention policies (\\[retention] in sealtrail.toml): redact event bodies past their time, on the record.",
    no_args_is_help=True,
)

DEFAULT_CONFIG = "sealtrail.toml"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"sealtrail.toml with a \\[retention] table (default: $SEALTRAIL_CONFIG, else ./{DEFAULT_CONFIG}).",
        show_default=False,
    ),
]
NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Enforce as of this RFC 3339 time instead of now (e.g. 2027-01-01T00:00:00Z)."),
]


def _config_path(path: Path | None) -> Path | None:
    if path is not None:
        if not path.is_file():
            raise OSError(f"config file {path} does not exist")
        return path
    named = os.environ.get("SEALTRAIL_CONFIG")
    if named:
        return _config_path(Path(named))
    default = Path(DEFAULT_CONFIG)
    return default if default.is_file() else None


def _retention(path: Path | None) -> RetentionConfig:
    found = _config_path(path)
    if found is None:
        raise OSError("no retention configuration: pass --config FILE (a sealtrail.toml with a [retention] table)")
    config = load_retention(found)
    if config.default_days is None and not any(p.days is not None for p in config.policies):
        raise OSError(f"{found}: [retention] sets no default_days and no policy with days: nothing would expire")
    return config


def _now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--now: {value!r} is not an RFC 3339 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ranges_text(indices: list[int], limit: int = 6) -> str:
    ranges = index_ranges(indices)
    shown = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:limit]]
    if len(ranges) > limit:
        shown.append(f"… ({len(ranges) - limit} more)")
    return ", ".join(shown) or "-"


def _print_retention_plan(plan: RetentionPlan) -> None:
    out = Console(width=max(100, Console().width))
    table = Table(title=f"retention as of {plan.now}: {plan.scanned} bodies scanned of {plan.size} entries")
    for column in ("policy", "days", "received before", "redact", "ranges", "withheld by holds"):
        table.add_column(column)
    for item in plan.policies.values():
        held = ", ".join(f"{name}: {len(ids)}" for name, ids in sorted(item.withheld.items())) or "-"
        table.add_row(
            item.policy.name,
            str(item.policy.days),
            item.cutoff,
            str(len(item.indices)),
            _ranges_text(item.indices),
            held,
        )
    out.print(table)
    out.print(f"would redact {plan.total} event bodies; legal holds keep {plan.withheld}")


def _print_committed(label: str, committed: list[Committed]) -> None:
    for item in committed:
        indices = [r.index for r in item.redactions]
        print(f"{label}: redacted {len(indices)} bodies ({_ranges_text(indices)}); record at index {item.record.index}")


@app.command("plan")
def plan(
    dir: DirOption = None,
    config: ConfigOption = None,
    now: NowOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Dry run: list what enforcing the retention policies would redact, and what legal holds keep."""
    with reported_errors():
        retention = _retention(config)
        store = data_dir(dir).store()
        try:
            result = plan_retention(store, retention, _now(now))
        finally:
            store.close()
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        _print_retention_plan(result)


@app.command("apply")
def apply(dir: DirOption = None, config: ConfigOption = None, now: NowOption = None) -> None:
    """Redact the bodies of expired events (legal holds excepted) and log a record per policy.

    Leaf hashes stay, so every proof and `verify` still pass; the bodies leave the database file.
    """
    with reported_errors():
        retention = _retention(config)
        directory = data_dir(dir)
        store = directory.store()
        try:
            with directory.open_log() as log, progress_bar("redacting") as bar:
                run = apply_retention(log, store, retention, _now(now), bar, on_plan=lambda p: bar.set_total(p.total))
        finally:
            store.close()
    for committed in run.committed:
        policy = committed.redactions[0].reason.removeprefix("retention:") if committed.redactions else "?"
        _print_committed(f"policy {policy}", [committed])
    if not run.committed:
        print(f"nothing to redact as of {run.plan.now}")
    if run.plan.withheld:
        print(f"legal holds kept {run.plan.withheld} expired bodies", file=sys.stderr)


def _print_erasure_plan(plan: ErasurePlan) -> None:
    print(f"matches {len(plan.indices)} event bodies ({_ranges_text(plan.indices)}) of {plan.size} entries")
    for name, ids in sorted(plan.withheld.items()):
        print(f"legal hold {name} keeps {len(ids)} of them ({_ranges_text(ids)})")


def erase_command(
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Data subject: events naming them as actor, or anywhere as a whole word."),
    ] = None,
    query: Annotated[str | None, typer.Option("--query", help='Events matching a query, e.g. "actor:alice".')] = None,
    request: Annotated[
        str | None,
        typer.Option("--request", help="Reference of the erasure request (ticket id); default: a new one, printed."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for the record (no personal data: it is kept for good).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be erased.")] = False,
    dir: DirOption = None,
    config: ConfigOption = None,
) -> None:
    """Erasure request (GDPR Art. 17): redact every matching event body and log an erasure record.

    The record holds the request reference, counts and index ranges, never the subject or the query.
    Events under a legal hold (a retention hold in the config) are kept and reported.
    """
    if (actor is None) == (query is None):
        raise fail("give exactly one of --actor ID or --query QUERY")
    with reported_errors():
        matcher = names_subject(actor) if actor is not None else EventQuery.parse(query or "")
        found = _config_path(config)
        holds = load_retention(found).holds if found is not None else ()
        if found is None:
            print("note: no config file, so no legal holds apply", file=sys.stderr)
        directory = data_dir(dir)
        store = directory.store()
        try:
            match = "actor" if actor is not None else "query"
            preview = plan_erasure(store, matcher, match=match, holds=holds)
            _print_erasure_plan(preview)
            if dry_run:
                return
            if not yes:
                if not sys.stdin.isatty():
                    raise fail("not erasing without confirmation: pass --yes")
                typer.confirm(f"redact {len(preview.indices)} event bodies for good?", abort=True)
            reference = request or new_request_reference()
            with directory.open_log() as log, progress_bar("redacting") as bar:
                run = erase(
                    log,
                    store,
                    matcher,
                    match=match,
                    request=reference,
                    reason=reason,
                    holds=holds,
                    progress=bar,
                    on_plan=lambda p: bar.set_total(len(p.indices)),
                )
        finally:
            store.close()
    _print_committed(f"erasure {run.request}", [c for c in run.committed if c.redactions])
    if not run.redacted:
        record = run.committed[0].record.index if run.committed else None
        print(f"erasure {run.request}: nothing to redact; request recorded at index {record}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="retention")
    root.command("erase")(erase_command)
