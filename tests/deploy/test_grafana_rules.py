"""deploy/: the dashboard and the alerting rules use only metrics sealtrail exports, and Prometheus accepts them.

The metric and label names are checked against a real scrape of the app; the rules, their unit tests, the
example prometheus.yml and every dashboard query are checked with promtool; and a real Prometheus scrapes a
real `sealtrail serve` with the documented bearer-token config and fires the integrity alert when the store is
tampered with. promtool and prometheus come from the Debian package `prometheus`: without them those tests
skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from _support import attacker_connection, devsecops_event, free_port, ndjson, wait_for, wait_until_serving
from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.metrics import STATUS_METRICS
from sealtrail.server import Settings, create_app

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "sealtrail-dashboard.json"
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "sealtrail-alerts.yml"
RULE_TESTS = PROMETHEUS / "sealtrail-alerts.test.yml"
CONFIG = PROMETHEUS / "prometheus.yml"

ADDED_BY_PROMETHEUS = {"instance", "job"}
"""Target labels Prometheus attaches to every scraped series."""

_METRIC = re.compile(r"\b((?:sealtrail|process)_[a-z0-9_]+)\b")
_SELECTOR = re.compile(r"\b((?:sealtrail|process)_[a-z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|on|ignoring)\s*\(([^)]*)\)")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (Debian package `prometheus`: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: these checks must run)")
        pytest.skip(message)
    return path


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels() -> list[dict[str, Any]]:
    return [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]


def _dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in _panels() for target in panel["targets"]]


def _rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus would receive it from Grafana."""
    for variable, value in (("$__rate_interval", "1m"), ("$__range", "6h"), ("$instance", ".*"), ("$job", ".*")):
        expr = expr.replace(variable, value)
    return expr


# --- the scrape the names are checked against ----------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Every sample name a busy server exports, with its label names.

    The app ingests, refuses, audits; the components built elsewhere (witnesses, forwarders, alerts,
    archive, mirrors) are stood in for by providers of every catalogued status metric.
    """
    directory = DataDir(tmp_path_factory.mktemp("exported") / "log")
    directory.init("deploy.sealtrail.test/log")
    token, _ = Credentials(directory.credentials).create_token("all", {"admin"})
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(directory, Settings(checkpoint_interval=0.05, verify_interval=0.1))) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        for name, spec in STATUS_METRICS.items():
            services.metrics.provide(name, (lambda: {"item": 1.0}) if spec.label else (lambda: 1.0))
        events = [devsecops_event(n, "deploy") for n in range(20)]
        nd = {**headers, "Content-Type": "application/x-ndjson"}
        assert client.post("/v1/events", content=ndjson(events), headers=nd).status_code == 200
        assert client.post("/v1/events", content=ndjson(events[:3]), headers=nd).status_code == 200
        assert client.post("/v1/events", content=b"{", headers={"Content-Type": "application/json"}).status_code == 401

        def scrape() -> str:
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 200
            text: str = response.text
            return text

        wait_for(lambda: "sealtrail_verify_last_success_timestamp_seconds" in scrape())
        out: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(scrape()):
            for sample in family.samples:
                out.setdefault(sample.name, set()).update(sample.labels)
    return out


def _check_names(expr: str, exported: dict[str, set[str]], where: str) -> None:
    names = set(_METRIC.findall(expr))
    assert names, f"{where}: no sealtrail metric in {expr!r}"
    for name in names:
        assert name in exported, f"{where}: {name} is not exported by sealtrail"
    available = set().union(*(exported[name] for name in names)) | ADDED_BY_PROMETHEUS
    for name, matchers in _SELECTOR.findall(expr):
        for label in _MATCHER.findall(matchers):
            assert label in exported[name] | ADDED_BY_PROMETHEUS, f"{where}: {name} has no label {label!r}"
    for grouping in _GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in grouping.split(","))):
            assert label in available, f"{where}: no metric in {expr!r} has the label {label!r}"


def test_every_dashboard_query_uses_exported_metrics_and_labels(exported: dict[str, set[str]]) -> None:
    for panel in _panels():
        for target in panel["targets"]:
            _check_names(target["expr"], exported, f"panel {panel['title']!r}")


def test_every_alert_uses_exported_metrics_and_labels(exported: dict[str, set[str]]) -> None:
    for rule in _rules():
        if rule["alert"] == "SealtrailDown":
            assert rule["expr"] == 'up{job="sealtrail"} == 0'  # Prometheus's own series, for the documented job
            continue
        _check_names(rule["expr"], exported, f"alert {rule['alert']}")


def test_the_dashboard_covers_every_area_of_the_issue() -> None:
    used = {name for expr in _dashboard_exprs() for name in _METRIC.findall(expr)}
    wanted = {
        "sealtrail_events_ingested_total",
        "sealtrail_ingest_rejected_total",
        "sealtrail_ingest_request_duration_seconds_bucket",
        "sealtrail_ack_duration_seconds_bucket",
        "sealtrail_sequencer_queue_events",
        "sealtrail_tree_size",
        "sealtrail_checkpoint_age_seconds",
        "sealtrail_verify_ok",
        "sealtrail_witness_ok",
        "sealtrail_witness_policy_met",
        "sealtrail_forwarder_lag_events",
        "sealtrail_alerts_fired_total",
    }
    assert wanted <= used, wanted - used
    catalogued = {f"sealtrail_{name}{'_total' if s.kind == 'counter' else ''}" for name, s in STATUS_METRICS.items()}
    assert catalogued <= used, f"status metrics with no panel: {catalogued - used}"


# --- the dashboard as Grafana imports it -----------------------------------------------------------------


def test_the_dashboard_is_an_importable_model_with_a_datasource_input() -> None:
    dashboard = _dashboard()
    assert dashboard["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes sealtrail",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    assert dashboard["id"] is None and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    required = {(item["type"], item["id"]) for item in dashboard["__requires"]}
    assert ("datasource", "prometheus") in required
    assert {("panel", panel["type"]) for panel in _panels()} <= required
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == source
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels():
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"] == source
    used_variables = {v for expr in _dashboard_exprs() for v in re.findall(r"\$(\w+)", expr)}
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert used_variables - {"__rate_interval", "__range"} <= defined


def test_the_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in _dashboard()["panels"]:
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24, panel["title"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


# --- the rules, as promtool reads them -------------------------------------------------------------------


def test_every_alert_has_a_severity_and_a_summary() -> None:
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names))
    for rule in _rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    tested = {
        test["alertname"]
        for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for test in case["alert_rule_test"]
    }
    assert {"SealtrailIntegrityCheckFailed", "SealtrailCheckpointStalled", "SealtrailIngestErrorsSpike"} <= tested
    assert {"SealtrailWitnessPolicyNotMet", "SealtrailForwarderLagging", "SealtrailSourceSilent"} <= tested


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    promtool = _need("promtool")
    assert f"SUCCESS: {len(_rules())} rules found" in _run([promtool, "check", "rules", RULES.name], PROMETHEUS)
    assert "SUCCESS" in _run([promtool, "test", "rules", RULE_TESTS.name], PROMETHEUS)


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    promtool = _need("promtool")
    rules = [
        {"record": f"dashboard:query_{n}", "expr": _grafana_to_promql(expr)}
        for n, expr in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in _run([promtool, "check", "rules", str(path)], tmp_path)


def _config_with(tmp_path: Path, token: str, target: str, interval: str) -> Path:
    """The documented prometheus.yml, with its token file and target pointed at this test's."""
    config = yaml.safe_load(CONFIG.read_text())
    token_file = tmp_path / "sealtrail.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o400)
    config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
    job = config["scrape_configs"][0]
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": [target]}]
    shutil.copy(RULES, tmp_path / RULES.name)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_promtool_checks_the_documented_config(tmp_path: Path) -> None:
    promtool = _need("promtool")
    path = _config_with(tmp_path, "st_x_y", "127.0.0.1:8080", "15s")
    assert "SUCCESS" in _run([promtool, "check", "config", str(path)], tmp_path)


# --- a real Prometheus scraping a real server ---------------------------------------------------------


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """(url, data directory, stderr log) of a `sealtrail serve` auditing every 0.5 s."""
    directory = tmp_path / "data"
    config = tmp_path / "sealtrail.toml"
    config.write_text("[server]\nverify_interval = 0.5\ncheckpoint_interval = 0.1\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "sealtrail", "serve", "--dir", str(directory), "--port", str(port)]
    proc = _start([*command, "--config", str(config), "--origin", "prom.sealtrail.test/log"], log)
    try:
        wait_until_serving(url, proc, log)
        yield url, directory, log
    finally:
        _stop(proc)


@pytest.mark.slow
def test_prometheus_scrapes_with_the_documented_token_config_and_fires_the_integrity_alert(
    tmp_path: Path, serving: tuple[str, Path, Path]
) -> None:
    binary = _need("prometheus")
    url, directory, _ = serving
    admin = next(
        line.rsplit(" ", 1)[1] for line in (tmp_path / "serve.log").read_text().splitlines() if "admin token" in line
    )
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "sealtrail",
            "token",
            "create",
            "--scope",
            "read",
            "--name",
            "prometheus",
            "--dir",
            str(directory),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    read_token = made.stdout.strip()
    posted = httpx.post(
        f"{url}/v1/events",
        content=ndjson([devsecops_event(n, "prom") for n in range(8)]),
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/x-ndjson"},
        timeout=30,
    )
    assert posted.status_code == 200, posted.text

    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    config = _config_with(prom_dir, read_token, url.removeprefix("http://"), "1s")
    prom_port = free_port()
    prom_url = f"http://127.0.0.1:{prom_port}"
    prom = _start(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={prom_dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        prom_dir / "prometheus.log",
    )

    def query(promql: str) -> list[dict[str, Any]]:
        try:
            response = httpx.get(f"{prom_url}/api/v1/query", params={"query": promql}, timeout=5)
        except httpx.TransportError:
            return []
        result: list[dict[str, Any]] = response.json()["data"]["result"] if response.status_code == 200 else []
        return result

    def firing(alertname: str) -> bool:
        try:
            alerts = httpx.get(f"{prom_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        except (httpx.TransportError, orjson.JSONDecodeError, ValueError):
            return False
        return any(a["labels"]["alertname"] == alertname and a["state"] == "firing" for a in alerts)

    try:

        def served_size() -> str:
            """The tree size the server itself reports now (its built-in alerts may add events of their own)."""
            scraped = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {read_token}"}, timeout=5).text
            [line] = [line for line in scraped.splitlines() if line.startswith("sealtrail_tree_size")]
            size = line.rsplit(" ", 1)[1].removesuffix(".0")
            assert int(size) >= 8
            return size

        wait_for(lambda: [r["value"][1] for r in query('sealtrail_tree_size{job="sealtrail"}')] == [served_size()], 60)
        assert [r["value"][1] for r in query('up{job="sealtrail"}')] == ["1"]
        assert query('sealtrail_verify_ok{job="sealtrail"}')[0]["value"][1] == "1"
        groups = httpx.get(f"{prom_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert {rule["name"] for group in groups for rule in group["rules"]} == {r["alert"] for r in _rules()}
        assert {rule["health"] for group in groups for rule in group["rules"]} <= {"ok", "unknown"}
        assert not firing("SealtrailIntegrityCheckFailed")

        attacker = attacker_connection(directory / "log.db")
        (entry,) = attacker.execute("SELECT entry FROM events WHERE idx = 5").fetchone()
        forged = bytes(entry).replace(b'"kind":"', b'"kind":"forged.', 1)
        attacker.execute("UPDATE events SET entry = ? WHERE idx = 5", (forged,))
        attacker.close()
        wait_for(lambda: firing("SealtrailIntegrityCheckFailed"), 60)
    finally:
        _stop(prom)
