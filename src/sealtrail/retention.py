"""Retention: keep event bodies N days, then redact them, unless a legal hold covers them.

Configured by the `[retention]` table of sealtrail.toml (docs/retention.md):

    [retention]
    default_days = 365        # events no policy names (omit: kept forever)
    interval = "1h"           # how often `serve` enforces retention (omit: never by itself)

    [[retention.policy]]      # the first policy (in file order) that matches an event decides
    name = "ssh-logs"
    source = "syslog"         # source.type or source.id; * ? [] are wildcards
    kind = "auth.*"
    days = 90                 # or "forever"

    [[retention.hold]]        # legal hold: matching events are never redacted (nor erased)
    name = "incident-4711"
    query = "actor:mallory since:2026-10-01"

An event's age counts from `received`, the time sealtrail accepted it, which a
source cannot backdate. sealtrail's own records are never redacted. Each
enforcement that redacts anything appends, in the same commit, a
`log.redaction` record (source sealtrail/retention) naming the policy, its
cutoff, the count and the index ranges, and what holds withheld.
"""

from __future__ import annotations

import logging
import re
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .event import format_time
from .log import Log
from .query import EventQuery, QueryError
from .redaction import Committed, commit_redactions, index_ranges, is_record, redact_planned, stored_events
from .store.base import LogStore

__all__ = [
    "Hold",
    "Policy",
    "PolicyPlan",
    "RetentionConfig",
    "RetentionPlan",
    "RetentionRun",
    "RetentionScheduler",
    "Selection",
    "apply_retention",
    "held_by",
    "load_retention",
    "parse_interval",
    "plan_retention",
    "retention_config",
]

logger = logging.getLogger("sealtrail.retention")

DEFAULT_POLICY = "default"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_INTERVAL = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Policy:
    """Keep the bodies of matching events `days` days (None: forever)."""

    name: str
    days: int | None
    source: str | None = None
    kind: str | None = None

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        if self.kind is not None and not fnmatchcase(str(envelope.get("kind", "")), self.kind):
            return False
        if self.source is not None:
            source = envelope.get("source")
            names = (source.get("type"), source.get("id")) if isinstance(source, Mapping) else ()
            if not any(isinstance(n, str) and fnmatchcase(n, self.source) for n in names):
                return False
        return True


@dataclass(frozen=True)
class Hold:
    """A legal hold: events its query matches are kept whatever the policies say."""

    name: str
    query: EventQuery


@dataclass(frozen=True)
class RetentionConfig:
    """The `[retention]` table."""

    default_days: int | None = None
    policies: tuple[Policy, ...] = ()
    holds: tuple[Hold, ...] = ()
    interval: float | None = None
    """Seconds between enforcement runs in `serve` (None: serve does not enforce)."""

    def policy_for(self, envelope: Mapping[str, Any]) -> Policy | None:
        """The policy deciding this event (the first match, else the default); None: kept forever."""
        for policy in self.policies:
            if policy.matches(envelope):
                return policy if policy.days is not None else None
        return None if self.default_days is None else Policy(DEFAULT_POLICY, self.default_days)

    @property
    def needs_raw(self) -> bool:
        return any(hold.query.needs_raw for hold in self.holds)


def held_by(holds: tuple[Hold, ...], envelope: Mapping[str, Any]) -> Hold | None:
    """The first legal hold covering this event, if any."""
    return next((hold for hold in holds if hold.query.matches(envelope)), None)


@dataclass(kw_only=True)
class Selection:
    """Indices chosen for redaction (retention or erasure), and those legal holds withheld, by hold name."""

    indices: list[int] = field(default_factory=list)
    withheld: dict[str, list[int]] = field(default_factory=dict)

    def add(self, index: int, holds: tuple[Hold, ...], envelope: Mapping[str, Any]) -> None:
        """Choose `index`, unless a legal hold covers its event."""
        hold = held_by(holds, envelope)
        if hold is not None:
            self.withheld.setdefault(hold.name, []).append(index)
        else:
            self.indices.append(index)

    def held(self, *, ranges: bool) -> list[dict[str, Any]]:
        """What each hold withheld: its name and count (and the index ranges, for a plan; a record lists counts)."""
        return [
            {"hold": name, "count": len(ids), **({"ranges": index_ranges(ids)} if ranges else {})}
            for name, ids in sorted(self.withheld.items())
        ]


def parse_interval(value: object, where: str = "retention.interval") -> float:
    """Seconds from a number or text such as "90s", "15m", "1h", "1d"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _INTERVAL.fullmatch(value.strip())):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f'{where}: {value!r} is not a duration such as "1h", "15m" or 3600')
    if seconds < 1:
        raise ValueError(f"{where}: must be at least one second")
    return seconds


def _days(value: object, where: str) -> int | None:
    if value == "forever":
        return None
    if type(value) is not int or value < 1:
        raise ValueError(f'{where}: expected a whole number of days >= 1 or "forever", not {value!r}')
    return value


def _text(table: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{key}: expected a non-empty string")
    return value


def _check_keys(table: object, known: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: expected a table")
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return table


def _named(table: Mapping[str, Any], where: str, seen: set[str]) -> str:
    name = _text(table, "name", where, required=True)
    assert name is not None
    if not _NAME.fullmatch(name):
        raise ValueError(f"{where}.name: {name!r} must be letters, digits, _ . : - (at most 128)")
    if name in seen:
        raise ValueError(f"{where}.name: {name!r} is used twice")
    seen.add(name)
    return name


def retention_config(table: object, where: str = "retention") -> RetentionConfig:
    """The [retention] table as a RetentionConfig; ValueError naming the offending key."""
    table = _check_keys(table, {"default_days", "interval", "policy", "hold"}, where)
    default = table.get("default_days")
    default_days = None if default is None else _days(default, f"{where}.default_days")
    interval = None if table.get("interval") is None else parse_interval(table["interval"], f"{where}.interval")
    policies: list[Policy] = []
    seen: set[str] = {DEFAULT_POLICY}
    raw_policies = table.get("policy", [])
    if not isinstance(raw_policies, list):
        raise ValueError(f"{where}.policy: write each policy as [[{where}.policy]]")
    for number, item in enumerate(raw_policies, start=1):
        here = f"{where}.policy[{number}]"
        item = _check_keys(item, {"name", "source", "kind", "days"}, here)
        name = _named(item, here, seen)
        source, kind = _text(item, "source", here), _text(item, "kind", here)
        if source is None and kind is None:
            raise ValueError(f"{here}: give source and/or kind (use {where}.default_days for everything else)")
        if "days" not in item:
            raise ValueError(f'{here}.days: required (a number of days, or "forever")')
        policies.append(Policy(name, _days(item["days"], f"{here}.days"), source, kind))
    holds: list[Hold] = []
    raw_holds = table.get("hold", [])
    if not isinstance(raw_holds, list):
        raise ValueError(f"{where}.hold: write each hold as [[{where}.hold]]")
    hold_names: set[str] = set()
    for number, item in enumerate(raw_holds, start=1):
        here = f"{where}.hold[{number}]"
        item = _check_keys(item, {"name", "query"}, here)
        name = _named(item, here, hold_names)
        query = _text(item, "query", here, required=True)
        assert query is not None
        try:
            holds.append(Hold(name, EventQuery.parse(query)))
        except QueryError as exc:
            raise ValueError(f"{here}.query: {exc}") from None
    return RetentionConfig(default_days, tuple(policies), tuple(holds), interval)


def load_retention(path: Path) -> RetentionConfig:
    """The [retention] table of a sealtrail.toml (an empty config if it has none)."""
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        return retention_config(document.get("retention", {}))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


# --- planning and enforcement ------------------------------------------------------------------


@dataclass
class PolicyPlan(Selection):
    """What one policy redacts in a run: bodies received before `cutoff` (`withheld`: expired, but held)."""

    policy: Policy
    cutoff: str


@dataclass
class RetentionPlan:
    now: str
    size: int
    scanned: int = 0
    policies: dict[str, PolicyPlan] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(len(plan.indices) for plan in self.policies.values())

    @property
    def withheld(self) -> int:
        return sum(len(ids) for plan in self.policies.values() for ids in plan.withheld.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "size": self.size,
            "scanned": self.scanned,
            "redact": self.total,
            "withheld": self.withheld,
            "policies": [
                {
                    "policy": plan.policy.name,
                    "days": plan.policy.days,
                    "cutoff": plan.cutoff,
                    "count": len(plan.indices),
                    "ranges": index_ranges(plan.indices),
                    "held": plan.held(ranges=True),
                }
                for plan in self.policies.values()
            ],
        }


def _now(now: datetime | None) -> datetime:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("--now must carry a time zone (e.g. 2027-01-01T00:00:00Z)")
    return moment


def plan_retention(
    store: LogStore, config: RetentionConfig, now: datetime | None = None, progress: Callable[[int], None] | None = None
) -> RetentionPlan:
    """What enforcing `config` at `now` would redact (nothing is written)."""
    moment = _now(now)
    plan = RetentionPlan(format_time(moment), store.size())
    for event in stored_events(store, plan.size, load_raw=config.needs_raw, progress=progress):
        plan.scanned += 1
        envelope = event.envelope
        if is_record(envelope):
            continue
        policy = config.policy_for(envelope)
        if policy is None or policy.days is None:
            continue
        name = policy.name
        if name not in plan.policies:
            plan.policies[name] = PolicyPlan(policy, format_time(moment - timedelta(days=policy.days)))
        policy_plan = plan.policies[name]
        received = envelope.get("received")
        if not isinstance(received, str) or received >= policy_plan.cutoff:
            continue
        policy_plan.add(event.index, config.holds, envelope)
    plan.policies = {name: p for name, p in plan.policies.items() if p.indices or p.withheld}
    return plan


@dataclass
class RetentionRun:
    plan: RetentionPlan
    committed: list[Committed] = field(default_factory=list)

    @property
    def redacted(self) -> int:
        return sum(len(c.redactions) for c in self.committed)


def apply_retention(
    log: Log,
    store: LogStore,
    config: RetentionConfig,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[RetentionPlan], None] | None = None,
) -> RetentionRun:
    """Plan and redact through the sequencer, one record per policy (and per MAX_PER_RECORD indices).

    If another writer redacted some of the same events meanwhile, plans again once.
    """

    def commit(plan: RetentionPlan) -> RetentionRun:
        run = RetentionRun(plan)
        for policy_plan in plan.policies.values():
            if not policy_plan.indices:
                continue
            policy = policy_plan.policy
            attrs = {
                "policy": policy.name,
                "days": policy.days,
                "cutoff": policy_plan.cutoff,
                "held": policy_plan.held(ranges=False),
            }
            done = run.redacted

            def advance(count: int, base: int = done) -> None:
                if progress is not None:
                    progress(base + count)

            run.committed += commit_redactions(
                log,
                policy_plan.indices,
                source_id="retention",
                kind="log.redaction",
                action="retention.apply",
                reason=f"retention:{policy.name}",
                attrs=attrs,
                progress=advance,
            )
        return run

    return redact_planned(lambda: plan_retention(store, config, now), commit, on_plan)


class RetentionScheduler:
    """Enforces retention in `serve`: once at start, then every `interval` seconds, through the app's Log."""

    def __init__(
        self,
        log: Log,
        store: LogStore,
        config: RetentionConfig,
        interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._log = log
        self._store = store
        self._config = config
        self._interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sealtrail-retention", daemon=True)
        self.runs = 0
        """Runs finished (successful or not)."""

    def start(self) -> RetentionScheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                run = apply_retention(self._log, self._store, self._config, self._clock())
                if run.redacted:
                    names = ", ".join(f"{n} ({len(p.indices)})" for n, p in run.plan.policies.items() if p.indices)
                    logger.info("retention: redacted %d event bodies under %s", run.redacted, names)
            except Exception:
                logger.exception("retention: enforcement failed; retrying at the next interval")
            self.runs += 1
            self._stop.wait(self._interval)
