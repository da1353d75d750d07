"""`sealtrail alerts ...`: the rules in force, a dry run over events, and the running service's state."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import orjson
import typer
from rich.console import Console
from rich.table import Table

from ..alerts.engine import Engine, parse_time
from ..alerts.rules import AlertsConfig, Matcher, Rule, load_alerts_config
from ..alerts.state import AlertStore
from ..event import EventError, format_time, normalise
from ._common import DirOption, data_dir, fail, reported_errors

__all__ = ["app"]

app = typer.Typer(
    help="Alert rules and sinks: list the rules in force, dry-run them over events, show delivery state.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="sealtrail.toml whose [alerts] table tunes the built-ins and adds rules and sinks."),
]
RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", help="A rules file ([[rule]] tables) to add to those in force; repeatable."),
]


def _config(config: Path | None, rules: list[Path] | None) -> AlertsConfig:
    for path in [config, *(rules or [])]:
        if path is not None and not path.is_file():
            raise ValueError(f"{path}: no such file")
    return load_alerts_config(config, extra_rules=rules or [])


def _shown(values: tuple[Any, ...]) -> str:
    return "|".join(value if isinstance(value, str) else json.dumps(value) for value in values)


def _conditions(matchers: tuple[Matcher, ...]) -> str:
    def one(matcher: Matcher) -> str:
        parts = []
        for condition in matcher.conditions:
            tests = []
            if condition.any_of is not None:
                tests.append("=" + _shown(condition.any_of))
            if condition.none_of is not None:
                tests.append("≠" + _shown(condition.none_of))
            if condition.globs is not None:
                tests.append("~" + "|".join(condition.globs))
            if condition.prefixes is not None:
                tests.append("^" + "|".join(condition.prefixes))
            if condition.exists is not None:
                tests.append(" exists" if condition.exists else " missing")
            parts.append(condition.path.text + ",".join(tests))
        return " ".join(parts) or "any event"

    return " OR ".join(one(m) for m in matchers) or "any event"


def _trigger(rule: Rule) -> str:
    if rule.mode == "new_value":
        return f"new {rule.new_value.text if rule.new_value else ''} (learn {rule.learning:g}s)"
    if rule.mode == "absent":
        return f"silent {rule.absent_for:g}s"
    if rule.mode == "checkpoint":
        return f"unsigned > {rule.checkpoint_max_age:g}s"
    text = "every event" if rule.threshold == 1 else f"≥{rule.threshold} in {rule.window:g}s"
    if rule.outside_windows:
        text += ", outside change windows"
    if rule.require_approval is not None:
        text += f", no approval within {rule.require_approval.within:g}s"
    return text


@app.command("list")
def list_rules(
    config: ConfigOption = None,
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per rule and sink.")] = False,
) -> None:
    """The rules in force (built-ins as tuned, then yours) and the sinks, as `serve` would run them."""
    with reported_errors():
        loaded = _config(config, rules)
    if as_json:
        for rule in loaded.rules:
            print(
                json.dumps(
                    {
                        "rule": rule.name,
                        "enabled": rule.enabled,
                        "origin": rule.origin,
                        "severity": rule.severity,
                        "mode": rule.mode,
                        "trigger": _trigger(rule),
                        "match": _conditions(rule.match),
                        "group_by": [p.text for p in rule.group_by],
                        "cooldown": rule.cooldown,
                    }
                )
            )
        for sink in loaded.sinks:
            print(
                json.dumps(
                    {
                        "sink": sink.name,
                        "type": sink.type,
                        "url": sink.display_url(),
                        "min_severity": sink.min_severity,
                        "rules": list(sink.rules),
                    }
                )
            )
        return
    out = Console(width=max(160, Console().width))
    table = Table(title=f"{len(loaded.active_rules)} alert rules in force")
    for column in ("rule", "origin", "severity", "fires on", "when", "group by", "cooldown"):
        table.add_column(column, overflow="fold")
    for rule in loaded.rules:
        name = rule.name if rule.enabled else f"[dim]{rule.name} (off)[/dim]"
        table.add_row(
            name,
            rule.origin,
            rule.severity,
            _conditions(rule.match),
            _trigger(rule),
            ", ".join(p.text for p in rule.group_by) or "-",
            f"{rule.cooldown:g}s",
        )
    out.print(table)
    if loaded.sinks:
        sinks = Table(title="sinks")
        for column in ("sink", "type", "url", "min severity", "rules"):
            sinks.add_column(column)
        for sink in loaded.sinks:
            sinks.add_row(sink.name, sink.type, sink.display_url(), sink.min_severity, ", ".join(sink.rules))
        out.print(sinks)
    else:
        out.print("no sinks: alerts are recorded in the log only")


def _events(path: Path) -> list[dict[str, Any]]:
    """Envelopes from NDJSON, validated and completed as sealtrail would store them."""
    out = []
    now = format_time(datetime.now(UTC))
    lines = sys.stdin.buffer.read().splitlines() if str(path) == "-" else path.read_bytes().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
            if not isinstance(event, dict):
                raise EventError("an event must be a JSON object")
            received = event.pop("received", None)
            if not isinstance(received, str):
                received = event.get("time") if isinstance(event.get("time"), str) else now
            completed = msgspec.to_builtins(normalise(event, received=received))
        except (orjson.JSONDecodeError, EventError) as exc:
            raise ValueError(f"{path} line {number}: {exc}") from None
        out.append(completed)
    return out


@app.command("test")
def test_rules(
    events: Annotated[Path, typer.Argument(help="Events as NDJSON (one envelope per line; - for stdin).")],
    config: ConfigOption = None,
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each alert as one JSON line.")] = False,
) -> None:
    """Dry run: which alerts the rules in force would fire over EVENTS, in order. Nothing is written.

    Event n (from 0) plays index n; timer rules (silent sources) are evaluated at each event's arrival.
    """
    with reported_errors():
        loaded = _config(config, rules)
        envelopes = _events(events)
    engine = Engine(loaded.active_rules)
    fired = []
    for index, envelope in enumerate(envelopes):
        fired += engine.observe(index, envelope)
        arrival = parse_time(envelope.get("received")) or parse_time(envelope.get("time"))
        if arrival is not None:
            fired += engine.tick(arrival)
    for alert in fired:
        if as_json:
            print(json.dumps(alert.to_json(), sort_keys=True))
        else:
            where = f"#{alert.last_index}" if alert.last_index is not None else "(timer)"
            print(f"{where}\t{alert.severity}\t{alert.rule}\t{alert.summary}")
    print(f"{len(fired)} alerts from {len(envelopes)} events ({len(loaded.active_rules)} rules)", file=sys.stderr)


@app.command("status")
def status(dir: DirOption = None) -> None:
    """What the alert service of a data directory has done: its cursor, alerts fired, sinks' queues."""
    with reported_errors():
        directory = data_dir(dir)
        path = directory.path / "alerts.db"
        if not path.exists():
            raise fail(f"no alerts.db in {directory.path}: `serve` runs alerts when sealtrail.toml has [alerts]")
        store = AlertStore(path)
        try:
            cursor = store.cursor()
            counters = store.counters()
            named = {scope.removeprefix("sink:") for scope, _ in counters if scope.startswith("sink:")}
            sinks = sorted(named | set(store.queued_sinks()))
            depths = {sink: store.depth(sink) for sink in sinks}
        finally:
            store.close()
    print(f"cursor: {cursor} (the next log index to evaluate)")
    for (scope, name), value in sorted(counters.items()):
        if scope == "rule":
            print(f"fired {name}: {value}")
    for sink in sinks:
        counts = {name: value for (scope, name), value in counters.items() if scope == f"sink:{sink}"}
        print(f"sink {sink}: queued {depths[sink]}, " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
