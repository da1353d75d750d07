"""`sealtrail alerts list | test | status`, run as a user would (a subprocess)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from _support import one_error_line
from alerts._events import BRUTE_FORCE_LINE, T0, github_payload, restamped, sshd_envelopes, sshd_line
from conftest import CliResult
from sealtrail.alerts import AlertsConfig, AlertService, builtin_rules
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.sources import github

Cli = Callable[..., CliResult]


def ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def brute_force() -> list[dict[str, Any]]:
    line = sshd_line(BRUTE_FORCE_LINE)
    return sshd_envelopes(restamped(line, T0 + timedelta(seconds=20 * n), port=50000 + n) for n in range(5))


def test_list_shows_every_built_in_and_the_tuning_of_a_config(tmp_path: Path, cli: Cli) -> None:
    plain = cli("alerts", "list", "--json")
    assert plain.code == 0, plain.stderr
    rows = [json.loads(line) for line in plain.text.splitlines()]
    assert [r["rule"] for r in rows] == [r.name for r in builtin_rules()]
    config = tmp_path / "sealtrail.toml"
    config.write_text(
        "[alerts.builtin.failed-auth-burst-ip]\nthreshold = 20\nwindow = 60\n\n[alerts.builtin.source-silent]\n"
        'enabled = false\n\n[[alerts.rule]]\nname = "prod-exec"\nmatch = { action = "create pods/exec" }\n'
    )
    tuned = {
        json.loads(line)["rule"]: json.loads(line)
        for line in cli("alerts", "list", "--json", "--config", config).text.splitlines()
    }
    assert tuned["failed-auth-burst-ip"]["trigger"] == "≥20 in 60s"
    assert tuned["failed-auth-burst-ip"]["origin"] == "builtin (tuned)"
    assert tuned["source-silent"]["enabled"] is False
    assert tuned["prod-exec"]["origin"] == "custom" and tuned["prod-exec"]["match"] == "action=create pods/exec"
    table = cli("alerts", "list", "--config", config)
    assert table.code == 0 and "prod-exec" in table.text and "no sinks" in table.text


def test_test_dry_runs_built_ins_and_a_rules_file_over_ndjson(tmp_path: Path, cli: Cli) -> None:
    payload = github_payload("push", None, 4)
    payload.update(forced=True, created=False)
    [push] = github.to_envelopes("push", "d-1", payload, "acme-github")
    events = ndjson(tmp_path / "events.ndjson", [*brute_force(), dict(push)])
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "any-push"\nseverity = "low"\nmatch = { kind = "code.push" }\n')
    result = cli("alerts", "test", "--rules", rules, events)
    assert result.code == 0, result.stderr
    lines = [line.split("\t") for line in result.text.splitlines()]
    assert [(where, rule) for where, _, rule, _ in lines] == [
        ("#4", "failed-auth-burst-ip"),
        ("#4", "failed-auth-burst-user"),
        ("#5", "force-push-protected"),
        ("#5", "any-push"),
        ("#4", "source-silent"),  # the push came 14 years after the sshd lines: bastion-01 had gone silent
    ]
    assert lines[0][3] == "5 failed authentications from 194.117.26.69 within 5m"
    assert "5 alerts from 6 events (15 rules)" in result.stderr
    as_json = cli("alerts", "test", "--json", events)
    assert [json.loads(line)["rule"] for line in as_json.text.splitlines()] == [
        "failed-auth-burst-ip",
        "failed-auth-burst-user",
        "force-push-protected",
        "source-silent",
    ]
    near_miss = ndjson(tmp_path / "four.ndjson", brute_force()[:4])
    quiet = cli("alerts", "test", near_miss)
    assert quiet.code == 0 and quiet.text == "" and "0 alerts from 4 events" in quiet.stderr


def test_test_refuses_a_bad_line_or_a_bad_rules_file_in_one_line(tmp_path: Path, cli: Cli) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text('{"kind": "code.push", "source": {"type": "api", "id": "ci"}}\n{"kind": "Not A Kind"}\n')
    bad = cli("alerts", "test", events)
    assert bad.code == 1 and "line 2: kind:" in one_error_line(bad.stderr)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\nthreshold = 3\n')
    refused = cli("alerts", "test", "--rules", rules, events)
    assert refused.code == 1 and "rule x.window" in one_error_line(refused.stderr)
    assert cli("alerts", "test", tmp_path / "missing.ndjson").code == 1


def test_status_reports_the_cursor_and_what_fired(data_dir: DataDir, cli: Cli) -> None:
    assert "no alerts.db" in one_error_line(cli("alerts", "status", "--dir", data_dir.path).stderr)
    log = data_dir.open_log(checkpoint_interval=0)
    store = data_dir.store()
    service = AlertService(AlertsConfig(), log, store, data_dir.path / "alerts.db")
    try:
        log.append([prepare(event) for event in brute_force()])
        assert len(service.run_once()) == 2
    finally:
        service.close()
        log.close()
        store.close()
    shown = cli("alerts", "status", "--dir", data_dir.path)
    assert shown.code == 0, shown.stderr
    assert shown.text.splitlines() == [
        "cursor: 5 (the next log index to evaluate)",
        "fired failed-auth-burst-ip: 1",
        "fired failed-auth-burst-user: 1",
    ]
