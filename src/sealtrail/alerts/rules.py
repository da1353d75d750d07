"""Alert rules: the model, its TOML form, and the built-ins (docs/alerts.md).

Pure: no I/O except `load_alerts_config`, which reads the files a configuration names.

A rule selects envelopes with `match` (a table of conditions over dotted envelope paths,
all of which must hold; a list of such tables means any of them) minus `exclude`, splits
them into groups by the values at `group_by`, and fires in one of these modes:

* count (the default): `threshold` matching events of one group within `window` seconds
  (threshold 1: every matching event), optionally only for events whose time falls
  `outside_windows` (change windows), or that deploy a commit without an approved review
  (`require_approval`);
* `new_value`: the group sees a value at that path it has not seen before (after a
  `learning` period during which values are only recorded);
* `absent_for`: a group that was seen has received nothing for that many seconds (timer);
* `checkpoint_max_age`: the log has held entries that no signed checkpoint covers for
  longer than that many seconds (timer; the rule may also match integrity events).

After a group fires it stays quiet for `cooldown` seconds. A path may name alternatives,
`actor.name|actor.id`: the first one present is used.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..envelope import value_at

__all__ = [
    "SEVERITIES",
    "SINK_TYPES",
    "AlertsConfig",
    "ApprovalRequirement",
    "ChangeWindow",
    "Condition",
    "ConfigError",
    "FieldPath",
    "Matcher",
    "Rule",
    "SinkConfig",
    "builtin_rules",
    "load_alerts_config",
    "parse_alerts_table",
    "parse_rule",
    "parse_rules_document",
    "parse_sink",
    "severity_rank",
    "webhook_key",
]

SEVERITIES = ("info", "low", "medium", "high", "critical")
SINK_TYPES = ("webhook", "slack", "alertmanager")
_RULE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_PATH_PART = re.compile(r"[A-Za-z0-9_@$-]+")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_SUMMARY_FIELD = re.compile(r"\{([a-z_]+)(?:\[([^\]\[{}]+)\])?\}")
_SUMMARY_FIELDS = frozenset({"rule", "count", "severity", "window", "group", "value", "detail"})

Scalar = str | int | float | bool


class ConfigError(ValueError):
    """The alert configuration is invalid; the message names the rule or sink and the key."""


def severity_rank(severity: str) -> int:
    """0 for info up to 4 for critical."""
    return SEVERITIES.index(severity)


# --- paths and conditions -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPath:
    """A dotted envelope path with `|` alternatives: the first one present is used."""

    text: str
    alternatives: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, text: str, where: str) -> FieldPath:
        if not isinstance(text, str) or not text:
            raise ConfigError(f"{where}: a path must be a non-empty string such as actor.ip")
        alternatives = []
        for alternative in text.split("|"):
            parts = tuple(alternative.strip().split("."))
            if not all(_PATH_PART.fullmatch(part) for part in parts):
                raise ConfigError(f"{where}: {text!r} is not a dotted path such as attrs.ref or actor.name|actor.id")
            alternatives.append(parts)
        return cls(text, tuple(alternatives))

    def get(self, envelope: Mapping[str, Any]) -> Any:
        """The value at the first alternative that is present (not None), else None."""
        for parts in self.alternatives:
            value = value_at(envelope, *parts)
            if value is not None:
                return value
        return None


def _same(a: Any, b: Scalar) -> bool:
    """JSON equality: booleans equal only booleans, numbers compare by value, strings exactly."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Condition:
    """What must hold of the value at `path`. Against a list value, a positive test holds
    if it holds for any element, and a negative one (not_in) if no element is excluded."""

    path: FieldPath
    any_of: tuple[Scalar, ...] | None = None
    none_of: tuple[Scalar, ...] | None = None
    globs: tuple[str, ...] | None = None
    prefixes: tuple[str, ...] | None = None
    exists: bool | None = None
    _glob: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _any_strings: frozenset[str] | None = field(init=False, repr=False, compare=False, default=None)
    _none_strings: frozenset[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # Derived once per rule: the glob patterns as one regex, and the string values of
        # any_of/none_of as sets, so that a string value (nearly every one) is one lookup.
        glob = None if self.globs is None else re.compile("|".join(fnmatch.translate(p) for p in self.globs))
        object.__setattr__(self, "_glob", glob)
        object.__setattr__(self, "_any_strings", _string_set(self.any_of))
        object.__setattr__(self, "_none_strings", _string_set(self.none_of))

    def holds(self, envelope: Mapping[str, Any]) -> bool:
        value = self.path.get(envelope)
        if self.exists is not None and (value is not None) != self.exists:
            return False
        if type(value) is str:
            return self._holds_for_string(value)
        items = value if isinstance(value, list) else [value]
        if self.none_of is not None and any(_same(item, banned) for item in items for banned in self.none_of):
            return False
        if self.any_of is not None and not any(_same(item, wanted) for item in items for wanted in self.any_of):
            return False
        if self._glob is not None and not any(isinstance(item, str) and self._glob.match(item) for item in items):
            return False
        return self.prefixes is None or any(isinstance(item, str) and item.startswith(self.prefixes) for item in items)

    def _holds_for_string(self, value: str) -> bool:
        """holds() for a string value: strings equal only strings (_same), so the sets decide."""
        if self._none_strings is not None and value in self._none_strings:
            return False
        if self._any_strings is not None and value not in self._any_strings:
            return False
        if self._glob is not None and self._glob.match(value) is None:
            return False
        return self.prefixes is None or value.startswith(self.prefixes)

    @property
    def tests_label_only(self) -> bool:
        """True if this condition reads one of the event's LABELS and nothing else."""
        return len(self.path.alternatives) == 1 and self.path.alternatives[0] in _LABEL_PATHS


LABELS = ("kind", "action")
"""Top-level fields with few values that most rules test: the engine picks a rule only for the values it may
select (Rule.may_select_labels), remembered per pair of values."""
_LABEL_PATHS = frozenset((label,) for label in LABELS)


def _string_set(values: tuple[Scalar, ...] | None) -> frozenset[str] | None:
    """The strings among `values` (None for no test): what a string value can equal under _same."""
    return None if values is None else frozenset(v for v in values if type(v) is str)


_OPERATORS = frozenset({"equals", "in", "not_equals", "not_in", "glob", "prefix", "exists"})


def _scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, str | int | float | bool):
        return value
    raise ConfigError(f"{where}: expected a string, number or boolean, not {type(value).__name__}")


def _scalars(value: Any, where: str) -> tuple[Scalar, ...]:
    if isinstance(value, list):
        return tuple(_scalar(item, where) for item in value)
    return (_scalar(value, where),)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{where}: expected a string or a list of strings")
    return tuple(items)


def _condition(path_text: str, spec: Any, where: str) -> Condition:
    path = FieldPath.parse(path_text, where)
    here = f"{where}.{path_text}"
    if isinstance(spec, list):
        return Condition(path, any_of=_scalars(spec, here))
    if not isinstance(spec, dict):
        return Condition(path, any_of=(_scalar(spec, here),))
    unknown = set(spec) - _OPERATORS
    if unknown or not spec:
        raise ConfigError(f"{here}: unknown operator {sorted(unknown)[0]!r}" if unknown else f"{here}: empty test")
    any_of = None
    if "equals" in spec or "in" in spec:
        any_of = _scalars(spec.get("equals", []), here) + _scalars(spec.get("in", []), here)
    none_of = None
    if "not_equals" in spec or "not_in" in spec:
        none_of = _scalars(spec.get("not_equals", []), here) + _scalars(spec.get("not_in", []), here)
    exists = spec.get("exists")
    if exists is not None and not isinstance(exists, bool):
        raise ConfigError(f"{here}.exists: expected true or false")
    return Condition(
        path,
        any_of=any_of,
        none_of=none_of,
        globs=_strings(spec["glob"], f"{here}.glob") if "glob" in spec else None,
        prefixes=_strings(spec["prefix"], f"{here}.prefix") if "prefix" in spec else None,
        exists=exists,
    )


@dataclass(frozen=True)
class Matcher:
    """A conjunction of conditions (an empty one matches every event)."""

    conditions: tuple[Condition, ...]

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        return all(condition.holds(envelope) for condition in self.conditions)

    def may_match_labels(self, labels: tuple[Any, ...]) -> bool:
        """False if no event with these LABELS values can match (a condition on one of them alone rejects it)."""
        probe = dict(zip(LABELS, labels, strict=True))
        return all(condition.holds(probe) for condition in self.conditions if condition.tests_label_only)


def _matchers(spec: Any, where: str) -> tuple[Matcher, ...]:
    tables = spec if isinstance(spec, list) else [spec]
    out = []
    for number, table in enumerate(tables):
        here = where if len(tables) == 1 else f"{where}[{number}]"
        if not isinstance(table, dict):
            raise ConfigError(f'{here}: expected a table of conditions such as {{kind = "auth.failure"}}')
        out.append(Matcher(tuple(_condition(path, value, here) for path, value in table.items())))
    return tuple(out)


# --- change windows and approvals ------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeWindow:
    """Days of the week and a time span in a time zone; `end` before `start` spans midnight."""

    days: tuple[str, ...]
    start: time
    end: time
    tz: str = "UTC"

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.tz))
        clock = local.time().replace(tzinfo=None)
        day = _DAYS[local.weekday()]
        if self.start <= self.end:
            return day in self.days and self.start <= clock < self.end
        if clock >= self.start:
            return day in self.days
        previous = _DAYS[(local.weekday() - 1) % 7]
        return previous in self.days and clock < self.end


def _clock(value: Any, where: str) -> time:
    if not isinstance(value, str) or not _HHMM.fullmatch(value):
        raise ConfigError(f"{where}: expected HH:MM (00:00 to 24:00)")
    if value == "24:00":
        return time.max
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _window(spec: Any, where: str) -> ChangeWindow:
    if not isinstance(spec, dict):
        raise ConfigError(f'{where}: expected {{days = ["mon", ...], start = "09:00", end = "17:00", tz = ...}}')
    unknown = set(spec) - {"days", "start", "end", "tz"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    days = tuple(day.lower()[:3] for day in _strings(spec.get("days", list(_DAYS)), f"{where}.days"))
    if not set(days) <= set(_DAYS):
        raise ConfigError(f"{where}.days: use mon, tue, wed, thu, fri, sat, sun")
    tz = spec.get("tz", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"{where}.tz: {tz!r} is not an IANA time zone such as Europe/Paris") from None
    return ChangeWindow(
        days, _clock(spec.get("start", "00:00"), f"{where}.start"), _clock(spec.get("end", "24:00"), f"{where}.end"), tz
    )


@dataclass(frozen=True)
class ApprovalRequirement:
    """A deploy must ship a commit approved in review at most `within` seconds before it.

    `missing_commit`: what to do with a deploy that names no commit ("fire" or "ignore").
    """

    within: float = 30 * 86400
    missing_commit: Literal["fire", "ignore"] = "fire"


# --- rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One alert rule (see the module docstring for the modes)."""

    name: str
    description: str = ""
    summary: str = ""
    severity: str = "medium"
    enabled: bool = True
    match: tuple[Matcher, ...] = ()
    exclude: tuple[Matcher, ...] = ()
    group_by: tuple[FieldPath, ...] = ()
    threshold: int = 1
    window: float = 0.0
    cooldown: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    outside_windows: tuple[ChangeWindow, ...] = ()
    require_approval: ApprovalRequirement | None = None
    new_value: FieldPath | None = None
    learning: float = 0.0
    absent_for: float | None = None
    checkpoint_max_age: float | None = None
    origin: str = "custom"
    """builtin, builtin (tuned) or custom: where the rule in force came from."""

    def selects(self, envelope: Mapping[str, Any]) -> bool:
        """True if `envelope` passes match (any table) and no exclude table."""
        if self.match and not any(matcher.matches(envelope) for matcher in self.match):
            return False
        return not any(matcher.matches(envelope) for matcher in self.exclude)

    def may_select_labels(self, labels: tuple[Any, ...]) -> bool:
        """False only if no event with these LABELS values can pass match: selects() is then False for them all."""
        return not self.match or any(matcher.may_match_labels(labels) for matcher in self.match)

    @property
    def mode(self) -> str:
        if self.new_value is not None:
            return "new_value"
        if self.absent_for is not None:
            return "absent"
        if self.checkpoint_max_age is not None:
            return "checkpoint"
        return "count"


_RULE_KEYS = frozenset(
    {
        "name",
        "description",
        "summary",
        "severity",
        "enabled",
        "match",
        "exclude",
        "group_by",
        "threshold",
        "window",
        "cooldown",
        "labels",
        "outside_windows",
        "require_approval",
        "new_value",
        "learning",
        "absent_for",
        "checkpoint_max_age",
    }
)


def _seconds(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (positive and value == 0):
        raise ConfigError(f"{where}: expected a number of seconds {'> 0' if positive else '>= 0'}")
    return float(value)


def _check_summary(text: str, where: str) -> str:
    for found in _SUMMARY_FIELD.finditer(text):
        if found.group(1) not in _SUMMARY_FIELDS:
            raise ConfigError(f"{where}: unknown field {{{found.group(1)}}} (use {', '.join(sorted(_SUMMARY_FIELDS))})")
    return text


def parse_rule(spec: Mapping[str, Any], *, origin: str = "custom") -> Rule:
    """A Rule from its TOML table; ConfigError names the rule and the key at fault."""
    name = spec.get("name")
    if not isinstance(name, str) or not _RULE_NAME.fullmatch(name):
        raise ConfigError(f"rule {name!r}: name must be lowercase letters, digits, - or _ (it becomes alert.<name>)")
    where = f"rule {name}"
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    severity = spec.get("severity", "medium")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}.severity: one of {', '.join(SEVERITIES)}")
    labels = spec.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ConfigError(f"{where}.labels: expected a table of strings")
    threshold = spec.get("threshold", 1)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ConfigError(f"{where}.threshold: expected an integer >= 1")
    window = _seconds(spec.get("window", 0), f"{where}.window")
    if threshold > 1 and window <= 0:
        raise ConfigError(f"{where}.window: a threshold above 1 needs a window in seconds")
    group_by = spec.get("group_by", [])
    if isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list):
        raise ConfigError(f"{where}.group_by: expected a list of paths")
    for text_key in ("description", "summary"):
        if not isinstance(spec.get(text_key, ""), str):
            raise ConfigError(f"{where}.{text_key}: expected a string")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.enabled: expected true or false")
    approval = None
    if "require_approval" in spec:
        approval = _approval(spec["require_approval"], f"{where}.require_approval")
    windows = spec.get("outside_windows", [])
    if not isinstance(windows, list):
        raise ConfigError(f"{where}.outside_windows: expected a list of windows")
    rule = Rule(
        name=name,
        description=spec.get("description", ""),
        summary=_check_summary(spec.get("summary", ""), f"{where}.summary"),
        severity=severity,
        enabled=enabled,
        match=_matchers(spec["match"], f"{where}.match") if "match" in spec else (),
        exclude=_matchers(spec["exclude"], f"{where}.exclude") if "exclude" in spec else (),
        group_by=tuple(FieldPath.parse(path, f"{where}.group_by") for path in group_by),
        threshold=threshold,
        window=window,
        cooldown=_seconds(spec.get("cooldown", 0), f"{where}.cooldown"),
        labels=dict(labels),
        outside_windows=tuple(_window(w, f"{where}.outside_windows[{n}]") for n, w in enumerate(windows)),
        require_approval=approval,
        new_value=FieldPath.parse(spec["new_value"], f"{where}.new_value") if "new_value" in spec else None,
        learning=_seconds(spec.get("learning", 0), f"{where}.learning"),
        absent_for=_seconds(spec["absent_for"], f"{where}.absent_for", positive=True) if "absent_for" in spec else None,
        checkpoint_max_age=_seconds(spec["checkpoint_max_age"], f"{where}.checkpoint_max_age", positive=True)
        if "checkpoint_max_age" in spec
        else None,
        origin=origin,
    )
    modes = [key for key in ("new_value", "absent_for", "checkpoint_max_age") if key in spec]
    if len(modes) > 1:
        raise ConfigError(f"{where}: {modes[0]} and {modes[1]} cannot be combined; make two rules")
    if modes and modes != ["checkpoint_max_age"] and (threshold > 1 or windows or approval is not None):
        raise ConfigError(f"{where}: threshold, outside_windows and require_approval apply to counting rules only")
    return rule


def _approval(spec: Any, where: str) -> ApprovalRequirement:
    if spec is True:
        return ApprovalRequirement()
    if not isinstance(spec, dict) or set(spec) - {"within", "missing_commit"}:
        raise ConfigError(f'{where}: expected {{within = SECONDS, missing_commit = "fire" | "ignore"}}')
    missing = spec.get("missing_commit", "fire")
    if missing not in ("fire", "ignore"):
        raise ConfigError(f'{where}.missing_commit: "fire" or "ignore"')
    return ApprovalRequirement(_seconds(spec.get("within", 30 * 86400), f"{where}.within", positive=True), missing)


def parse_rules_document(document: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    """The `[[rule]]` tables of a rules file (or `[[alerts.rule]]` of a sealtrail.toml)."""
    tables = document.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ConfigError(f"{where}: rules are [[rule]] tables")
    return tables


def _builtin_tables() -> list[Mapping[str, Any]]:
    text = resources.files(__package__).joinpath("builtin.toml").read_text(encoding="utf-8")
    return parse_rules_document(tomllib.loads(text), "builtin.toml")


def builtin_rules() -> list[Rule]:
    """The rules shipped in builtin.toml, untuned."""
    return [parse_rule(table, origin="builtin") for table in _builtin_tables()]


# --- sinks --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SinkConfig:
    """Where alerts go. `url` and `secret` are secrets (Slack's URL holds a token): never shown."""

    name: str
    type: Literal["webhook", "slack", "alertmanager"]
    url: str = field(repr=False)
    secret: bytes | None = field(default=None, repr=False)
    """Webhook HMAC key (the base64 after whsec_, decoded, or the secret's bytes)."""
    bearer_token: str | None = field(default=None, repr=False)
    min_severity: str = "info"
    rules: tuple[str, ...] = ("*",)
    timeout: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    max_age: float = 0.0
    """Give up on an alert not delivered after this many seconds (0: never)."""
    resolve_after: float = 3600.0
    """Alertmanager: endsAt is this long after the alert is sent."""

    def accepts(self, rule: str, severity: str) -> bool:
        return severity_rank(severity) >= severity_rank(self.min_severity) and any(
            fnmatch.fnmatchcase(rule, pattern) for pattern in self.rules
        )

    def display_url(self) -> str:
        """scheme://host[:port] only: paths and queries may hold tokens."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


_SINK_KEYS = frozenset(
    {
        "name",
        "type",
        "url",
        "url_file",
        "url_env",
        "secret_file",
        "secret_env",
        "bearer_token_file",
        "min_severity",
        "rules",
        "timeout",
        "backoff_initial",
        "backoff_max",
        "max_age",
        "resolve_after",
    }
)


def _read_secret_file(path: Path, where: str) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"{where}: {path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    if not text:
        raise ConfigError(f"{where}: {path} is empty")
    return text


def _secret_value(spec: Mapping[str, Any], key: str, base: Path, where: str) -> str | None:
    """The value of `<key>_file` (a 0600 file, relative to the config) or `<key>_env` (a variable name)."""
    if f"{key}_file" in spec:
        return _read_secret_file(base / str(spec[f"{key}_file"]), f"{where}.{key}_file")
    if f"{key}_env" in spec:
        name = spec[f"{key}_env"]
        value = os.environ.get(str(name), "").strip()
        if not value:
            raise ConfigError(f"{where}.{key}_env: the environment variable {name} is not set")
        return value
    return None


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret: the base64 after whsec_ (Standard Webhooks), else the text's bytes."""
    if secret.startswith("whsec_"):
        encoded = secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("the webhook secret starts with whsec_ but is not followed by base64") from None
        if len(key) < 16:
            raise ConfigError("the webhook secret is shorter than 16 bytes")
        return key
    if len(secret) < 16:
        raise ConfigError("the webhook secret is shorter than 16 characters")
    return secret.encode()


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: expected an http:// or https:// URL")


def parse_sink(spec: Mapping[str, Any], base: Path) -> SinkConfig:
    name = spec.get("name")
    if not isinstance(name, str) or not _RULE_NAME.fullmatch(name):
        raise ConfigError(f"sink {name!r}: name must be lowercase letters, digits, - or _")
    where = f"sink {name}"
    unknown = set(spec) - _SINK_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    kind = spec.get("type")
    if kind not in SINK_TYPES:
        raise ConfigError(f"{where}.type: one of {', '.join(SINK_TYPES)}")
    url = spec.get("url") if "url" in spec else _secret_value(spec, "url", base, where)
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{where}: set url (or url_file / url_env for a URL that holds a token)")
    _check_url(url, f"{where}.url")
    secret_text = _secret_value(spec, "secret", base, where)
    secret = None
    if kind == "webhook":
        if secret_text is None:
            raise ConfigError(f"{where}: a webhook needs secret_file or secret_env (the HMAC key receivers verify)")
        try:
            secret = webhook_key(secret_text)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    bearer = _secret_value(spec, "bearer_token", base, where)
    min_severity = spec.get("min_severity", "info")
    if min_severity not in SEVERITIES:
        raise ConfigError(f"{where}.min_severity: one of {', '.join(SEVERITIES)}")
    return SinkConfig(
        name=name,
        type=kind,
        url=url,
        secret=secret,
        bearer_token=bearer,
        min_severity=min_severity,
        rules=_strings(spec.get("rules", ["*"]), f"{where}.rules"),
        timeout=_seconds(spec.get("timeout", 10), f"{where}.timeout", positive=True),
        backoff_initial=_seconds(spec.get("backoff_initial", 1), f"{where}.backoff_initial", positive=True),
        backoff_max=_seconds(spec.get("backoff_max", 300), f"{where}.backoff_max", positive=True),
        max_age=_seconds(spec.get("max_age", 0), f"{where}.max_age"),
        resolve_after=_seconds(spec.get("resolve_after", 3600), f"{where}.resolve_after", positive=True),
    )


# --- the [alerts] table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertsConfig:
    """`[alerts]` in sealtrail.toml: the rules in force, the sinks, and how the runner follows the log."""

    enabled: bool = True
    rules: tuple[Rule, ...] = field(default_factory=lambda: tuple(builtin_rules()))
    sinks: tuple[SinkConfig, ...] = ()
    start: Literal["end", "beginning"] = "end"
    """Where a data directory without an alert cursor starts: the log's end (no alerts on history) or 0."""
    poll: float = 0.5
    """Seconds between looks for new entries."""
    tick: float = 5.0
    """Seconds between evaluations of the timer rules (absent_for, checkpoint_max_age)."""
    batch: int = 1000
    base_url: str | None = None
    """The server's public URL, for links to alert events (Slack, Alertmanager generatorURL)."""

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)


_ALERTS_KEYS = frozenset(
    {"enabled", "start", "poll", "tick", "batch", "base_url", "builtin", "rule", "rules_files", "sink"}
)


def _merge_rules(
    builtins: Iterable[Mapping[str, Any]],
    overrides: Mapping[str, Any],
    custom: Iterable[Mapping[str, Any]],
) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    known = set()
    for table in builtins:
        name = table["name"]
        known.add(name)
        override = overrides.get(name)
        if override is None:
            rules.append(parse_rule(table, origin="builtin"))
            continue
        if not isinstance(override, dict) or "name" in override:
            raise ConfigError(f"alerts.builtin.{name}: expected a table of the rule's keys (name excepted)")
        rules.append(parse_rule({**table, **override}, origin="builtin (tuned)"))
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"alerts.builtin.{sorted(unknown)[0]}: no built-in rule has that name")
    for table in custom:
        rule = parse_rule(table)
        if rule.name in known:
            raise ConfigError(
                f"rule {rule.name}: the name is taken (tune a built-in with [alerts.builtin.{rule.name}])"
            )
        known.add(rule.name)
        rules.append(rule)
    return tuple(rules)


def parse_alerts_table(table: Mapping[str, Any], base: Path, *, extra_rules: Sequence[Path] = ()) -> AlertsConfig:
    """AlertsConfig from an `[alerts]` table; relative file names are relative to `base`."""
    if not isinstance(table, dict):
        raise ConfigError("alerts must be a table")
    unknown = set(table) - _ALERTS_KEYS
    if unknown:
        raise ConfigError(f"unknown setting alerts.{sorted(unknown)[0]}")
    overrides = table.get("builtin", {})
    if not isinstance(overrides, dict):
        raise ConfigError("alerts.builtin: expected [alerts.builtin.<rule>] tables")
    custom = list(parse_rules_document(table, "alerts"))
    files = [base / str(name) for name in table.get("rules_files", [])] + list(extra_rules)
    for path in files:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        custom.extend(parse_rules_document(document.get("alerts", document), str(path)))
    sinks_spec = table.get("sink", [])
    if not isinstance(sinks_spec, list):
        raise ConfigError("alerts.sink: sinks are [[alerts.sink]] tables")
    sinks = tuple(parse_sink(spec, base) for spec in sinks_spec)
    if len({sink.name for sink in sinks}) != len(sinks):
        raise ConfigError("alerts.sink: two sinks share a name")
    start = table.get("start", "end")
    if start not in ("end", "beginning"):
        raise ConfigError('alerts.start: "end" or "beginning"')
    base_url = table.get("base_url")
    if base_url is not None:
        _check_url(str(base_url), "alerts.base_url")
    enabled = table.get("enabled", True)
    batch = table.get("batch", 1000)
    if not isinstance(enabled, bool):
        raise ConfigError("alerts.enabled: expected true or false")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError("alerts.batch: expected an integer >= 1")
    return AlertsConfig(
        enabled=enabled,
        rules=_merge_rules(_builtin_tables(), overrides, custom),
        sinks=sinks,
        start=start,
        poll=_seconds(table.get("poll", 0.5), "alerts.poll", positive=True),
        tick=_seconds(table.get("tick", 5), "alerts.tick", positive=True),
        batch=batch,
        base_url=str(base_url).rstrip("/") if base_url is not None else None,
    )


def load_alerts_config(path: Path | None, *, extra_rules: Sequence[Path] = ()) -> AlertsConfig:
    """The `[alerts]` table of a sealtrail.toml (built-ins only when there is no file or no table)."""
    if path is None:
        return parse_alerts_table({}, Path.cwd(), extra_rules=extra_rules)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return parse_alerts_table(document.get("alerts", {}), path.parent, extra_rules=extra_rules)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
