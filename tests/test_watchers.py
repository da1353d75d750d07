"""`[[monitor]]` inside `serve`: a watched tiles log that forks raises the integrity-fork alert, logged as an event."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from _follow_fixtures import Branch
from _support import wait_for
from sealtrail.alerts.rules import parse_alerts_table
from sealtrail.datadir import DataDir
from sealtrail.server import Settings, create_app, load_settings
from sealtrail.watchers import MonitorConfig, parse_monitor_tables


def _kinds(directory: DataDir) -> list[dict[str, object]]:
    store = directory.store()
    try:
        return [orjson.loads(entry) for _, entry in store.entries(0, store.size())]
    finally:
        store.close()


def test_a_fork_of_a_watched_log_is_alerted_and_logged(tmp_path: Path) -> None:
    watched = Branch.create(tmp_path / "watched")
    watched.grow(20)
    site = tmp_path / "site"
    watched.publish(site)
    fork = watched.fork(tmp_path / "forked", "forged")

    server = DataDir(tmp_path / "server")
    server.init("watcher.sealtrail.test/log")
    settings = Settings(
        checkpoint_interval=0.05,
        prepare_workers=0,
        verify_interval=0,
        alerts=parse_alerts_table({"poll": 0.05, "tick": 0.1}, tmp_path),
        monitor=(MonitorConfig("upstream", str(site), vkey=watched.vkey, interval=0.05),),
    )
    state = server.path / "monitors" / "upstream.json"
    with TestClient(create_app(server, settings)):
        wait_for(state.exists, what="the watched log's first checkpoint trusted")
        watched.grow(5)
        watched.publish(site)
        wait_for(lambda: b'"size": 25' in state.read_bytes(), what="the watched log's growth trusted")
        fork.grow(5)  # the same 20 entries, then 5 others: another tree of size 25 under the same key
        fork.publish(site, fresh=True)

        def alerted() -> bool:
            return any(event["kind"] == "alert.integrity-fork" for event in _kinds(server))

        wait_for(alerted, what="the integrity-fork alert in the log")
    alerts = [e for e in _kinds(server) if e["kind"] == "alert.integrity-fork"]
    assert len(alerts) == 1  # one alarm, however long the watched log stays forked
    details = alerts[0]["attrs"]["details"]  # type: ignore[index]
    assert details["detail"].startswith("monitor upstream: two signed checkpoints of size 25")
    evidence = details["evidence"]
    assert (evidence["monitor"], evidence["observed"]) == ("upstream", "fork")
    assert evidence["conflict"]["trusted"]["root"] != evidence["conflict"]["conflicting"]["root"]


def test_monitor_tables_are_read_from_sealtrail_toml(tmp_path: Path) -> None:
    config = tmp_path / "sealtrail.toml"
    config.write_text('[[monitor]]\nname = "archive"\nurl = "s3://audit/log"\ninterval = 300\n')
    assert load_settings(config).monitor == (MonitorConfig("archive", "s3://audit/log", interval=300.0),)
    config.write_text('[[monitor]]\nname = "Bad Name"\nurl = "x"\n')
    with pytest.raises(ValueError, match=r"sealtrail.toml: monitor #1: name must be"):
        load_settings(config)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"name": "a"}, "is not an array"),
        ([{"name": "a"}], "url is required"),
        ([{"name": "a", "url": "d", "interval": 0}], "interval must be a positive"),
        ([{"name": "a", "url": "d", "vkey": "nope"}], "vkey"),
        ([{"name": "a", "url": "d", "colour": "red"}], "unknown setting colour"),
        ([{"name": "a", "url": "d"}, {"name": "a", "url": "e"}], "share a name"),
    ],
)
def test_bad_monitor_tables_are_refused(tables: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_monitor_tables(tables)
