"""The rule model: conditions, the TOML format, built-ins and their tuning, sinks, and clear errors."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sealtrail.alerts import AlertsConfig, ConfigError, builtin_rules, load_alerts_config, parse_alerts_table
from sealtrail.alerts.rules import ChangeWindow, parse_rule, webhook_key
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
