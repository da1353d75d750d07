"""Rule evaluation over a stream of (index, envelope), with state that can be saved and restored.

Pure: no I/O. The engine's whole memory is a mapping of string keys to JSON values
(`state()`; `take_changes()` gives what changed since the last call, None for a key
dropped), so the runner can persist it next to its cursor in one transaction and a
restarted engine continues exactly where the saved one stopped.

Clocks: windows and new-value learning use the event's `time` (when it happened);
cooldowns and silence use `received` (when sealtrail accepted it), because they are
about the people reading alerts and the pipes that feed the log; timer rules get the
wall clock from `tick(now)`. The engine never looks at its own alert events
(source {type: sealtrail, id: alerts}), so alerts cannot feed back into rules.

Approvals (`require_approval`): the engine remembers, per repository, the commits
an approved review covers: a GitHub review approval covers its commit_id and its pull
request (a dismissal withdraws both); a GitLab merge request approval covers the
request's last commit and the request (unapproval withdraws); merging an approved pull
or merge request covers the merge commit. A deploy is approved when its commit
(attrs.sha, head_sha or GitLab's short_sha, matched as a prefix) is covered within the
rule's `within` seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..event import delivery_id, format_time
from .rules import LABELS, ApprovalRequirement, Rule

__all__ = [
    "ALERT_SOURCE",
    "Alert",
    "Engine",
    "alert_envelope",
    "is_alert_event",
    "parse_time",
]

ALERT_SOURCE = {"type": "sealtrail", "id": "alerts"}
"""The source of the alert events sealtrail appends to its own log."""

_SEP = "\x1f"
_MAX_WINDOW_EVENTS = 10_000
_LABELS_REMEMBERED = 4096
"""Distinct (kind, action) pairs whose rules the engine keeps (they repeat; a flood of new ones costs a pick each)."""
_STALE_WINDOW = 86400.0
"""A count window whose newest event is this much older than the window is dropped on tick."""
_EVENT_FIELDS = ("id", "kind", "action", "outcome", "actor", "target", "env", "time")


def parse_time(text: Any) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp; None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def _stamp(seconds: float) -> str:
    return format_time(datetime.fromtimestamp(seconds, UTC))


def _duration(seconds: float) -> str:
    """300 → 5m, 14400 → 4h, 90 → 90s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def is_alert_event(envelope: Mapping[str, Any]) -> bool:
    source = envelope.get("source")
    return isinstance(source, Mapping) and source.get("type") == "sealtrail" and source.get("id") == "alerts"


@dataclass(frozen=True)
class Alert:
    """One firing of a rule. `key` is deterministic: replaying the same events yields the same alert."""

    key: str
    rule: str
    severity: str
    summary: str
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    group: Mapping[str, str] = field(default_factory=dict)
    count: int = 1
    first_index: int | None = None
    last_index: int | None = None
    first_time: str | None = None
    last_time: str | None = None
    env: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The id of the alert's event in the log (derived from its delivery key)."""
        return delivery_id(ALERT_SOURCE["type"], ALERT_SOURCE["id"], self.key)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "rule": self.rule,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "labels": dict(self.labels),
            "group": dict(self.group),
            "count": self.count,
            "details": dict(self.details),
        }
        for name in ("first_index", "last_index", "first_time", "last_time", "env"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        return cls(
            key=data["key"],
            rule=data["rule"],
            severity=data["severity"],
            summary=data["summary"],
            description=data.get("description", ""),
            labels=dict(data.get("labels", {})),
            group=dict(data.get("group", {})),
            count=int(data.get("count", 1)),
            first_index=data.get("first_index"),
            last_index=data.get("last_index"),
            first_time=data.get("first_time"),
            last_time=data.get("last_time"),
            env=data.get("env"),
            details=dict(data.get("details", {})),
        )


def alert_envelope(alert: Alert, fired_at: str) -> dict[str, Any]:
    """The event that records `alert` in the log: kind alert.<rule>, source sealtrail/alerts.

    Its delivery is the alert's key, so appending the same alert twice stores it once.
    """
    attrs: dict[str, Any] = {
        "rule": alert.rule,
        "severity": alert.severity,
        "summary": alert.summary,
        "group": dict(alert.group),
        "count": alert.count,
    }
    for name in ("first_index", "last_index", "first_time", "last_time"):
        value = getattr(alert, name)
        if value is not None:
            attrs[name] = value
    if alert.labels:
        attrs["labels"] = dict(alert.labels)
    if alert.details:
        attrs["details"] = dict(alert.details)
    envelope: dict[str, Any] = {
        "source": {**ALERT_SOURCE, "delivery": alert.key},
        "kind": f"alert.{alert.rule}",
        "action": "alert.fire",
        "outcome": "success",
        "time": fired_at,
        "target": {"type": "rule", "name": alert.rule},
        "attrs": attrs,
    }
    if alert.env:
        envelope["env"] = alert.env
    return envelope


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _describe(envelope: Mapping[str, Any]) -> str:
    """`action by actor on target`, from what the event has."""
    action = envelope.get("action") or envelope.get("kind") or "event"
    actor = envelope.get("actor") or {}
    target = envelope.get("target") or {}
    who = actor.get("name") or actor.get("id") or actor.get("ip")
    what = target.get("name") or target.get("id")
    return f"{action}{f' by {who}' if who else ''}{f' on {what}' if what else ''}"


def _event_summary(envelope: Mapping[str, Any]) -> dict[str, Any]:
    return {name: envelope[name] for name in _EVENT_FIELDS if envelope.get(name) is not None}


_FIELD = re.compile(r"\{([a-z_]+)(?:\[([^\]\[{}]+)\])?\}")


def _render(rule: Rule, group: Mapping[str, str], count: int, value: str, detail: str) -> str:
    """The rule's summary with {rule}, {count}, {severity}, {window}, {group[path]}, {value}, {detail} filled in."""
    if not rule.summary:
        parts = ", ".join(f"{k}={v}" for k, v in group.items() if v)
        return f"{rule.name}: {value or detail}{f' ({parts})' if parts else ''}"
    window = rule.window or rule.absent_for or rule.checkpoint_max_age or 0

    def fill(found: re.Match[str]) -> str:
        name, key = found.group(1), found.group(2)
        if name == "group":
            return group.get(key, "") if key else ", ".join(f"{k}={v}" for k, v in group.items())
        values: dict[str, str] = {
            "rule": rule.name,
            "count": str(count),
            "severity": rule.severity,
            "window": _duration(window),
            "value": value,
            "detail": detail,
        }
        return values.get(name, found.group(0))

    return _FIELD.sub(fill, rule.summary)


def _commit_of(envelope: Mapping[str, Any]) -> str | None:
    attrs = envelope.get("attrs") or {}
    for name in ("sha", "head_sha", "short_sha", "commit", "commit_id"):
        value = attrs.get(name)
        if isinstance(value, str) and len(value) >= 7:
            return value.lower()
    return None


def _repository_of(envelope: Mapping[str, Any]) -> str | None:
    """The repository an event is about: GitLab's project path, else a repository target's name."""
    attrs = envelope.get("attrs") or {}
    target = envelope.get("target") or {}
    for value in (
        attrs.get("project"),
        attrs.get("repository"),
        target.get("name") if target.get("type") in ("repository", "project", None) else None,
    ):
        if isinstance(value, str) and value:
            return value.lower()
    return None


class Engine:
    """Evaluates rules over events in log order (see the module docstring)."""

    def __init__(self, rules: Sequence[Rule], state: Mapping[str, Any] | None = None) -> None:
        self._rules = tuple(rule for rule in rules if rule.enabled)
        self._state: dict[str, Any] = dict(state or {})
        self._dirty: set[str] = set()
        self._tracks_approvals = any(rule.require_approval is not None for rule in self._rules)
        self._approval_horizon = max(
            (rule.require_approval.within for rule in self._rules if rule.require_approval is not None), default=0.0
        )
        self._by_labels: dict[tuple[Any, ...], tuple[Rule, ...]] = {}
        """Values of rules.LABELS -> the rules that may select an event with them (Rule.may_select_labels)."""

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    # -- state ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return dict(self._state)

    @property
    def has_changes(self) -> bool:
        return bool(self._dirty)

    def take_changes(self) -> dict[str, Any]:
        """Keys changed since the last call, with their values (None: the key was dropped)."""
        changes = {key: self._state.get(key) for key in self._dirty}
        self._dirty.clear()
        return changes

    def _get(self, key: str) -> Any:
        return self._state.get(key)

    def _put(self, key: str, value: Any) -> None:
        if value is None:
            self._state.pop(key, None)
        else:
            self._state[key] = value
        self._dirty.add(key)

    # -- events -----------------------------------------------------------------------------

    def observe(self, index: int | None, envelope: Mapping[str, Any]) -> list[Alert]:
        """The alerts that this event, appended at `index`, fires."""
        if is_alert_event(envelope):
            return []
        moment = parse_time(envelope.get("time"))
        arrival = parse_time(envelope.get("received"))
        if moment is None:
            moment = arrival if arrival is not None else 0.0
        if arrival is None:
            arrival = moment
        if self._tracks_approvals:
            self._learn_approval(envelope, moment)
        alerts = []
        for rule in self._rules_for(tuple(envelope.get(label) for label in LABELS)):
            if rule.mode == "absent":
                if rule.selects(envelope):
                    self._seen_source(rule, index, envelope, arrival)
                continue
            if not rule.match and rule.mode == "checkpoint":
                continue
            if not rule.selects(envelope):
                continue
            if rule.mode == "new_value":
                alert = self._new_value(rule, index, envelope, moment, arrival)
            else:
                alert = self._count(rule, index, envelope, moment, arrival)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _rules_for(self, labels: tuple[Any, ...]) -> tuple[Rule, ...]:
        """The rules worth evaluating for an event with these rules.LABELS values: the others cannot select it."""
        if not all(value is None or type(value) is str for value in labels):
            return self._rules
        rules = self._by_labels.get(labels)
        if rules is None:
            rules = tuple(rule for rule in self._rules if rule.may_select_labels(labels))
            if len(self._by_labels) < _LABELS_REMEMBERED:
                self._by_labels[labels] = rules
        return rules

    def _group(self, rule: Rule, envelope: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        values = {path.text: _text(path.get(envelope)) for path in rule.group_by}
        return json.dumps(list(values.values()), separators=(",", ":")), values

    def _cooling(self, rule: Rule, fired: float | None, arrival: float) -> bool:
        return fired is not None and rule.cooldown > 0 and 0 <= arrival - fired < rule.cooldown

    def _make(
        self,
        rule: Rule,
        group_key: str,
        group: dict[str, str],
        trigger: str,
        *,
        count: int = 1,
        first: tuple[float, int | None] | None = None,
        last: tuple[float, int | None] | None = None,
        envelope: Mapping[str, Any] | None = None,
        value: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> Alert:
        digest = hashlib.sha256(f"{rule.name}{_SEP}{group_key}".encode()).hexdigest()[:16]
        extra: dict[str, Any] = dict(details or {})
        detail = ""
        if envelope is not None:
            extra["event"] = _event_summary(envelope)
            attrs = envelope.get("attrs") or {}
            if envelope.get("source", {}).get("type") == "sealtrail":
                for name in ("detail", "evidence"):
                    if attrs.get(name) is not None:
                        extra[name] = attrs[name]
            detail = _text(attrs.get("detail")) or _describe(envelope)
            value = value or _describe(envelope)
        detail = _text(extra.get("detail")) or detail
        return Alert(
            key=f"{rule.name}:{digest}:{trigger}",
            rule=rule.name,
            severity=rule.severity,
            summary=_render(rule, group, count, value, detail),
            description=rule.description,
            labels=dict(rule.labels),
            group=group,
            count=count,
            first_index=first[1] if first else None,
            last_index=last[1] if last else None,
            first_time=_stamp(first[0]) if first else None,
            last_time=_stamp(last[0]) if last else None,
            env=envelope.get("env") if envelope is not None else None,
            details=extra,
        )

    def _count(
        self, rule: Rule, index: int | None, envelope: Mapping[str, Any], moment: float, arrival: float
    ) -> Alert | None:
        if rule.outside_windows:
            when = datetime.fromtimestamp(moment, UTC)
            if any(window.contains(when) for window in rule.outside_windows):
                return None
        details: dict[str, Any] = {}
        value = ""
        if rule.require_approval is not None:
            verdict = self._unapproved(rule.require_approval, envelope, moment)
            if verdict is None:
                return None
            value = verdict
            details["approval"] = verdict
        group_key, group = self._group(rule, envelope)
        key = f"count{_SEP}{rule.name}{_SEP}{group_key}"
        saved = self._get(key) or {"events": [], "fired": None}
        if self._cooling(rule, saved["fired"], arrival):
            return None
        events = [*saved["events"], [moment, index]]
        if rule.threshold > 1:
            newest = max(event[0] for event in events)
            events = sorted((e for e in events if e[0] >= newest - rule.window), key=lambda e: e[0])
            events = events[-_MAX_WINDOW_EVENTS:]
        if len(events) < rule.threshold:
            self._put(key, {"events": events, "fired": saved["fired"]})
            return None
        self._put(key, {"events": [], "fired": arrival} if rule.cooldown > 0 else None)
        first, last = events[0], events[-1]
        trigger = str(index) if index is not None else str(envelope.get("id", f"{moment:.6f}"))
        return self._make(
            rule,
            group_key,
            group,
            trigger,
            count=len(events),
            first=(first[0], first[1]),
            last=(last[0], last[1]),
            envelope=envelope,
            value=value,
            details=details,
        )

    def _new_value(
        self, rule: Rule, index: int | None, envelope: Mapping[str, Any], moment: float, arrival: float
    ) -> Alert | None:
        assert rule.new_value is not None
        raw = rule.new_value.get(envelope)
        if raw is None:
            return None
        value = _text(raw)
        learn_key = f"learn{_SEP}{rule.name}"
        started = self._get(learn_key)
        if started is None:
            started = moment
            self._put(learn_key, started)
        group_key, group = self._group(rule, envelope)
        key = f"seen{_SEP}{rule.name}{_SEP}{group_key}"
        saved = self._get(key) or {"values": {}, "fired": None}
        known = value in saved["values"]
        saved["values"][value] = max(moment, saved["values"].get(value, moment))
        fire = not known and moment >= started + rule.learning and not self._cooling(rule, saved["fired"], arrival)
        if fire:
            saved["fired"] = arrival
        self._put(key, saved)
        if not fire:
            return None
        return self._make(
            rule,
            group_key,
            group,
            str(index) if index is not None else value,
            first=(moment, index),
            last=(moment, index),
            envelope=envelope,
            value=value,
            details={"value": value},
        )

    def _seen_source(self, rule: Rule, index: int | None, envelope: Mapping[str, Any], arrival: float) -> None:
        group_key, group = self._group(rule, envelope)
        key = f"absent{_SEP}{rule.name}{_SEP}{group_key}"
        saved = self._get(key)
        if saved is not None and saved["last"] > arrival:
            return
        self._put(key, {"last": arrival, "index": index, "group": group, "fired": None})

    # -- approvals --------------------------------------------------------------------------

    def _learn_approval(self, envelope: Mapping[str, Any], moment: float) -> None:
        kind = envelope.get("kind")
        if kind not in ("code.review", "code.merge"):
            return
        repo = _repository_of(envelope)
        if repo is None:
            return
        attrs = envelope.get("attrs") or {}
        action = envelope.get("action") or ""
        key = f"approved{_SEP}{repo}"
        saved = self._get(key) or {"commits": {}, "changes": {}}
        commits: dict[str, float] = saved["commits"]
        changes: dict[str, list[Any]] = saved["changes"]
        gitlab = (envelope.get("source") or {}).get("type") == "gitlab"
        number = _text(attrs.get("iid") if gitlab else attrs.get("number"))
        if gitlab:
            raw: Any = envelope.get("raw")
            raw = raw if isinstance(raw, dict) else {}
            last_commit = ((raw.get("object_attributes") or {}).get("last_commit") or {}).get("id")
            head = last_commit.lower() if isinstance(last_commit, str) else None
            approved = action in ("merge_request.approved", "merge_request.approval")
            withdrawn = action in ("merge_request.unapproved", "merge_request.unapproval")
            merged = action == "merge_request.merge"
        else:
            head_value = attrs.get("commit_id") or attrs.get("head_sha")
            head = head_value.lower() if isinstance(head_value, str) else None
            approved = action == "pull_request_review.submitted" and attrs.get("approved") is True
            withdrawn = action == "pull_request_review.dismissed"
            merged = kind == "code.merge"
        if approved:
            if head:
                commits[head] = moment
            if number:
                changes[number] = [moment, head]
        elif withdrawn:
            if number:
                dropped = changes.pop(number, None)
                if dropped and dropped[1]:
                    commits.pop(dropped[1], None)
            if head:
                commits.pop(head, None)
        elif merged:
            merge_commit = attrs.get("merge_commit_sha")
            covered = (number and number in changes) or (head is not None and head in commits)
            if covered and isinstance(merge_commit, str) and merge_commit:
                commits[merge_commit.lower()] = moment
        else:
            return
        self._put(key, saved)

    def _unapproved(self, requirement: ApprovalRequirement, envelope: Mapping[str, Any], moment: float) -> str | None:
        """None if the deploy's commit is covered by an approval; else why not."""
        commit = _commit_of(envelope)
        repo = _repository_of(envelope)
        if commit is None or repo is None:
            return None if requirement.missing_commit == "ignore" else "the deploy names no commit to check"
        saved = self._get(f"approved{_SEP}{repo}") or {"commits": {}}
        for approved, when in saved["commits"].items():
            if (approved.startswith(commit) or commit.startswith(approved)) and moment - when <= requirement.within:
                return None
        return f"commit {commit[:12]} of {repo} has no approved review"

    # -- timers -----------------------------------------------------------------------------

    def tick(self, now: float, *, checkpoint_lag: float | None = None, detail: str = "") -> list[Alert]:
        """Alerts of the timer rules at wall-clock `now` (epoch seconds).

        `checkpoint_lag`: seconds for which committed entries have gone without a signed checkpoint.
        """
        alerts: list[Alert] = []
        for rule in self._rules:
            if rule.mode == "absent":
                alerts.extend(self._silent(rule, now))
            elif rule.mode == "checkpoint" and checkpoint_lag is not None:
                alert = self._stale(rule, now, checkpoint_lag, detail)
                if alert is not None:
                    alerts.append(alert)
        self._prune(now)
        return alerts

    def _silent(self, rule: Rule, now: float) -> Iterable[Alert]:
        assert rule.absent_for is not None
        prefix = f"absent{_SEP}{rule.name}{_SEP}"
        for key in [key for key in self._state if key.startswith(prefix)]:
            saved = self._state[key]
            if now - saved["last"] < rule.absent_for:
                continue
            fired = saved["fired"]
            if fired is not None and (rule.cooldown <= 0 or now - fired < rule.cooldown):
                continue
            self._put(key, {**saved, "fired": now})
            silent = now - saved["last"]
            group_key = key[len(prefix) :]
            repeat = "" if fired is None else f"+{int(now)}"
            yield self._make(
                rule,
                group_key,
                saved["group"],
                f"silent-since-{saved['last']:.6f}{repeat}",
                last=(saved["last"], saved["index"]),
                value=f"silent for {_duration(round(silent))}",
                details={
                    "silent_since": _stamp(saved["last"]),
                    "silent_for": round(silent, 3),
                    "detail": f"nothing received since {_stamp(saved['last'])}",
                },
            )

    def _stale(self, rule: Rule, now: float, lag: float, detail: str) -> Alert | None:
        assert rule.checkpoint_max_age is not None
        if lag <= rule.checkpoint_max_age:
            return None
        key = f"count{_SEP}{rule.name}{_SEP}[]"
        saved = self._get(key) or {"events": [], "fired": None}
        if self._cooling(rule, saved["fired"], now):
            return None
        self._put(key, {"events": [], "fired": now})
        text = detail or f"committed entries have had no signed checkpoint for {lag:.0f}s"
        return self._make(
            rule,
            "[]",
            {},
            f"lag-{int(now)}",
            value=text,
            details={"detail": text, "checkpoint_lag": round(lag, 3)},
        )

    def _prune(self, now: float) -> None:
        """Forget count windows and cooldowns that can no longer matter, and approvals past their horizon."""
        by_name = {rule.name: rule for rule in self._rules}
        for key in list(self._state):
            family, _, rest = key.partition(_SEP)
            rule = by_name.get(rest.partition(_SEP)[0])
            if family in ("count", "absent") and rule is None:
                self._put(key, None)
            elif family == "count" and rule is not None:
                saved = self._state[key]
                fired = saved.get("fired")
                events = saved["events"]
                if events and max(e[0] for e in events) < now - rule.window - _STALE_WINDOW:
                    events = []  # a window that ended long ago: nothing can join it now
                if not events and (fired is None or now - fired >= rule.cooldown):
                    self._put(key, None)
                elif events is not saved["events"]:
                    self._put(key, {"events": events, "fired": fired})
            elif family == "approved" and self._approval_horizon:
                saved = self._state[key]
                horizon = now - self._approval_horizon
                commits = {c: t for c, t in saved["commits"].items() if t >= horizon}
                changes = {n: v for n, v in saved["changes"].items() if v[0] >= horizon}
                if len(commits) != len(saved["commits"]) or len(changes) != len(saved["changes"]):
                    self._put(key, {"commits": commits, "changes": changes} if commits or changes else None)
