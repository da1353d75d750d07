"""The rule model: conditions, the TOML format, built-ins and their tuning, sinks, and clear errors."""

from __future__ import annotations

import copy
import fnmatch
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _github_fixtures import webhook_examples
from alerts._events import github_event, sshd_events, sshd_line
from sealtrail.alerts import AlertsConfig, ConfigError, builtin_rules, load_alerts_config, parse_alerts_table
from sealtrail.alerts.rules import LABELS, ChangeWindow, parse_rule, webhook_key
from sealtrail.watchers import parse_monitor_tables

EVENT: dict[str, Any] = {
    "kind": "code.push",
    "source": {"type": "github", "id": "acme-github"},
    "actor": {"name": "octocat", "ip": "203.0.113.7"},
    "target": {"type": "repository", "name": "acme/payments-api"},
    "attrs": {"ref": "refs/heads/release/2.4", "forced": True, "commits": 3, "changes": ["admin_enforced"]},
}


def rule(**spec: Any) -> Any:
    return parse_rule({"name": "r", **spec})


@pytest.mark.parametrize(
    ("match", "selected"),
    [
        ({"kind": "code.push"}, True),
        ({"kind": "code.review"}, False),
        ({"kind": ["code.review", "code.push"]}, True),
        ({"attrs.ref": {"glob": "refs/heads/release/*"}}, True),
        ({"attrs.ref": {"glob": ["refs/heads/main", "refs/tags/*"]}}, False),
        ({"attrs.ref": {"prefix": "refs/heads/"}}, True),
        ({"actor.ip": {"exists": True}}, True),
        ({"actor.id": {"exists": True}}, False),
        ({"actor.id": {"exists": False}}, True),
        ({"source.type": {"not_in": ["gitlab", "jenkins"]}}, True),
        ({"source.type": {"not_equals": "github"}}, False),
        ({"attrs.forced": True}, True),
        ({"attrs.forced": 1}, False),  # JSON true is not the number 1
        ({"attrs.commits": 3}, True),
        ({"attrs.commits": 3.0}, True),
        ({"attrs.commits": "3"}, False),
        ({"attrs.changes": "admin_enforced"}, True),  # a list value: any element
        ({"attrs.changes": {"not_in": ["admin_enforced"]}}, False),
        ({"actor.id|actor.name": "octocat"}, True),  # the first alternative present
        ({"target.id|source.id": "acme-github"}, True),
        ({"raw.anything.deep": {"exists": True}}, False),
        ({"kind": "code.push", "actor.name": "hubot"}, False),  # all conditions must hold
        ({}, True),
    ],
)
def test_conditions(match: dict[str, Any], selected: bool) -> None:
    assert rule(match=match).selects(EVENT) is selected


def test_a_list_of_match_tables_is_any_of_them_and_exclude_wins() -> None:
    either = rule(match=[{"kind": "deploy"}, {"attrs.forced": True}])
    assert either.selects(EVENT)
    assert not rule(match=[{"kind": "deploy"}, {"attrs.forced": False}]).selects(EVENT)
    assert not rule(match={"kind": "code.push"}, exclude={"actor.name": "octocat"}).selects(EVENT)


def test_change_windows_span_midnight_and_follow_their_time_zone() -> None:
    night = ChangeWindow(("fri",), start=datetime(1, 1, 1, 22).time(), end=datetime(1, 1, 1, 6).time(), tz="UTC")
    assert night.contains(datetime(2026, 3, 6, 23, 0, tzinfo=UTC))  # Friday 23:00
    assert night.contains(datetime(2026, 3, 7, 5, 59, tzinfo=UTC))  # Saturday 05:59, Friday's window
    assert not night.contains(datetime(2026, 3, 7, 6, 0, tzinfo=UTC))
    assert not night.contains(datetime(2026, 3, 5, 23, 0, tzinfo=UTC))  # Thursday
    tokyo = rule(outside_windows=[{"days": ["mon"], "start": "09:00", "end": "17:00", "tz": "Asia/Tokyo"}])
    [window] = tokyo.outside_windows
    assert window.contains(datetime(2026, 3, 2, 0, 30, tzinfo=UTC))  # Monday 09:30 in Tokyo
    assert not window.contains(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))  # Monday 18:30 in Tokyo


def test_every_built_in_is_documented_on_and_named_uniquely() -> None:
    rules = builtin_rules()
    names = [r.name for r in rules]
    assert len(names) == len(set(names)) >= 14
    assert all(r.enabled and r.description and r.summary and r.origin == "builtin" for r in rules)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    assert all(f"`{name}`" in docs for name in names)


def test_built_ins_are_tuned_or_turned_off_by_name() -> None:
    config = parse_alerts_table(
        {"builtin": {"failed-auth-burst-ip": {"threshold": 10, "window": 60}, "source-silent": {"enabled": False}}},
        Path("."),
    )
    by_name = {r.name: r for r in config.rules}
    tuned = by_name["failed-auth-burst-ip"]
    assert (tuned.threshold, tuned.window, tuned.cooldown, tuned.origin) == (10, 60.0, 900.0, "builtin (tuned)")
    assert "source-silent" not in {r.name for r in config.active_rules}
    assert by_name["failed-auth-burst-user"].origin == "builtin"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"builtin": {"no-such-rule": {"threshold": 2}}}, "alerts.builtin.no-such-rule: no built-in rule"),
        ({"rule": [{"name": "Bad Name"}]}, "name must be lowercase"),
        ({"rule": [{"name": "x", "severity": "urgent"}]}, "rule x.severity: one of info"),
        ({"rule": [{"name": "x", "threshold": 5}]}, "rule x.window: a threshold above 1 needs a window"),
        ({"rule": [{"name": "x", "match": {"kind": {"regex": ".*"}}}]}, "unknown operator 'regex'"),
        ({"rule": [{"name": "x", "match": {"kind..x": "a"}}]}, "is not a dotted path"),
        ({"rule": [{"name": "x", "thresold": 5}]}, "rule x: unknown key 'thresold'"),
        ({"rule": [{"name": "x", "outside_windows": [{"tz": "Mars/Olympus"}]}]}, "not an IANA time zone"),
        ({"rule": [{"name": "x", "outside_windows": [{"start": "9am"}]}]}, "expected HH:MM"),
        ({"rule": [{"name": "x", "new_value": "actor.name", "absent_for": 60}]}, "cannot be combined"),
        ({"rule": [{"name": "x", "summary": "{nope}"}]}, "unknown field {nope}"),
        ({"rule": [{"name": "admin-granted"}]}, "the name is taken"),
        ({"sink": [{"name": "w", "type": "pager"}]}, "sink w.type: one of webhook, slack, alertmanager"),
        ({"sink": [{"name": "w", "type": "webhook", "url": "https://h.example/x"}]}, "needs secret_file or secret_env"),
        ({"sink": [{"name": "s", "type": "slack", "url": "ftp://h.example"}]}, "expected an http:// or https:// URL"),
        ({"start": "middle"}, 'alerts.start: "end" or "beginning"'),
        ({"colour": "red"}, "unknown setting alerts.colour"),
    ],
)
def test_bad_configuration_is_refused_with_a_message_naming_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_alerts_table(table, Path("."))
    assert message in str(caught.value)


def test_a_sealtrail_toml_with_rules_files_and_sinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "extra.toml").write_text(
        '[[rule]]\nname = "prod-secret-read"\nseverity = "low"\nmatch = { kind = "secret.access", env = "prod" }\n'
    )
    secret = tmp_path / "webhook.secret"
    secret.write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
    secret.chmod(0o600)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    config = tmp_path / "sealtrail.toml"
    config.write_text(
        """
[alerts]
start = "beginning"
base_url = "https://sealtrail.example.com/"
rules_files = ["rules/extra.toml"]

[alerts.builtin.secret-alert]
severity = "critical"

[[alerts.sink]]
name = "soc"
type = "webhook"
url = "https://soc.example.com/hooks/sealtrail"
secret_file = "webhook.secret"
min_severity = "high"

[[alerts.sink]]
name = "chat"
type = "slack"
url_env = "SLACK_WEBHOOK_URL"
rules = ["integrity-*", "secret-alert"]
"""
    )
    loaded = load_alerts_config(config)
    assert loaded.start == "beginning" and loaded.base_url == "https://sealtrail.example.com"
    assert loaded.rules[-1].name == "prod-secret-read" and loaded.rules[-1].origin == "custom"
    soc, chat = loaded.sinks
    assert soc.secret == webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") and len(soc.secret) == 24
    assert soc.accepts("secret-alert", "critical") and not soc.accepts("prod-secret-read", "low")
    assert chat.accepts("integrity-fork", "info") and not chat.accepts("admin-granted", "critical")
    assert "XXXXSECRET" not in repr(chat) and "whsec" not in repr(soc) and "MfKQ" not in repr(soc)
    assert chat.display_url() == "https://hooks.slack.com"
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_alerts_config(config)


def test_no_file_means_every_built_in_and_no_sink() -> None:
    config = load_alerts_config(None)
    assert isinstance(config, AlertsConfig) and config.sinks == ()
    assert [r.name for r in config.active_rules] == [r.name for r in builtin_rules()]


def test_the_shipped_builtin_file_is_plain_toml_in_the_rule_format() -> None:
    import sealtrail.alerts

    text = (Path(sealtrail.alerts.__file__).parent / "builtin.toml").read_text()
    tables = tomllib.loads(text)["rule"]
    assert [parse_rule(t).name for t in tables] == [r.name for r in builtin_rules()]


def test_the_configuration_examples_of_the_docs_are_valid() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    blocks = [tomllib.loads(block) for block in re.findall(r"```toml\n(.*?)```", docs, re.S)]
    checked = 0
    for block in blocks:
        if "monitor" in block:
            parse_monitor_tables(block["monitor"])
            continue
        if "sink" not in block.get("alerts", {}):  # sink examples name secret files that exist only there
            parse_alerts_table(block["alerts"], Path("."))
            checked += 1
    assert checked >= 3


# --- the fast paths agree with the definitions ---------------------------------------------------

_TEXT = st.text(alphabet=st.sampled_from("ab.*?[]!-/_xyz"), max_size=8)
_VALUE = st.one_of(_TEXT, st.integers(-3, 3), st.booleans(), st.none(), st.lists(_TEXT, max_size=3))


def _same_json(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _holds(value: Any, spec: dict[str, Any]) -> bool:
    """docs/alerts.md's definition of a condition, evaluated directly (fnmatch for globs)."""
    if "exists" in spec and (value is not None) != spec["exists"]:
        return False
    items = value if isinstance(value, list) else [value]
    if "not_in" in spec and any(_same_json(i, b) for i in items for b in spec["not_in"]):
        return False
    if "in" in spec and not any(_same_json(i, w) for i in items for w in spec["in"]):
        return False
    if "glob" in spec and not any(
        isinstance(i, str) and fnmatch.fnmatchcase(i, p) for i in items for p in spec["glob"]
    ):
        return False
    return "prefix" not in spec or any(isinstance(i, str) and i.startswith(p) for i in items for p in spec["prefix"])


@settings(max_examples=400, deadline=None)
@given(
    value=_VALUE,
    spec=st.fixed_dictionaries(
        {},
        optional={
            "in": st.lists(st.one_of(_TEXT, st.integers(-3, 3), st.booleans()), min_size=1, max_size=3),
            "not_in": st.lists(st.one_of(_TEXT, st.integers(-3, 3), st.booleans()), min_size=1, max_size=3),
            "glob": st.lists(_TEXT, min_size=1, max_size=3),
            "prefix": st.lists(_TEXT, min_size=1, max_size=2),
            "exists": st.booleans(),
        },
    ),
)
def test_a_condition_holds_exactly_as_defined(value: Any, spec: dict[str, Any]) -> None:
    """Conditions compile globs into one regex and test strings against sets; the outcome is the definition's."""
    if not spec:
        return
    event = {"kind": "k", "attrs": {"v": value}}
    assert rule(match={"attrs.v": spec}).selects(event) is _holds(value, spec)


def _real_events() -> list[dict[str, Any]]:
    events = [github_event(e.event, copy.deepcopy(e.payload)) for e in webhook_examples()]
    lines = [sshd_line(pattern, n) for pattern in ("Failed password", "Invalid user", "Accepted") for n in range(3)]
    return events + sshd_events(lines)


def test_no_built_in_rule_is_skipped_for_an_event_it_selects() -> None:
    """The engine evaluates, for each kind and action, only the rules that may select them: never one that
    would have fired."""
    events = _real_events()
    assert len({event["kind"] for event in events}) >= 8
    pruned = 0
    for built_in in builtin_rules():
        for event in events:
            labels = tuple(event.get(label) for label in LABELS)
            if built_in.selects(event):
                assert built_in.may_select_labels(labels), (built_in.name, labels)
            pruned += not built_in.may_select_labels(labels)
    assert pruned > len(events)  # and it does skip rules: the point of it


def test_a_rule_testing_labels_with_any_operator_is_picked_exactly_when_it_may_select() -> None:
    selects_only = rule(match=[{"kind": {"glob": "auth.*"}, "action": {"not_in": ["login"]}}, {"action": "sudo"}])
    assert selects_only.may_select_labels(("auth.failure", "ssh"))
    assert not selects_only.may_select_labels(("auth.failure", "login"))
    assert selects_only.may_select_labels(("code.push", "sudo"))
    assert not selects_only.may_select_labels(("code.push", None))
    assert rule(match={"env": "prod"}).may_select_labels(("code.push", None))  # no label test: always picked
