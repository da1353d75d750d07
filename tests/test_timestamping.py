"""The background time-stamper against a real `openssl ts -reply` TSA on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _support import devsecops_events
from _tsa_fixtures import OpensslTsa, Pki, openssl_verify, other_pki, pki, tsa  # noqa: F401  (fixtures)
from sealtrail.datadir import DataDir
from sealtrail.log import Log
from sealtrail.note import parse_note
from sealtrail.store.sqlite import SqliteStore
from sealtrail.timestamp import load_trust, verify_timestamp
from sealtrail.timestamping import Timestamping, TimestampingSettings, parse_timestamping


def _until(condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Poll `condition` until it returns something truthy (the service works in its own thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def store(data_dir: DataDir) -> Iterator[SqliteStore]:
    opened = data_dir.store()
    try:
        yield opened
    finally:
        opened.close()


def _service(url: str, ca: Path, log: Log, store: SqliteStore, **settings: Any) -> Timestamping:
    return Timestamping(TimestampingSettings(url, ca, **({"retry_max": 0.2} | settings)), log, store)


def test_checkpoints_get_time_stamps_that_openssl_verifies(
    tsa: OpensslTsa,  # noqa: F811
    pki: Pki,  # noqa: F811
    log: Log,
    store: SqliteStore,
    tmp_path: Path,
) -> None:
    log.append(devsecops_events(0, 3, "ts"))
    size, note = log.wait_for_checkpoint(3, timeout=10)
    assert size == 3
    with _service(tsa.url, pki.ca_cert, log, store) as service:
        reply = _until(lambda: store.timestamp(3), "a time-stamp on checkpoint 3")
        status = service.status()
    text, _ = parse_note(note)
    info = verify_timestamp(reply, text, load_trust(pki.ca_cert))
    assert store.latest_timestamp() == (3, info.gen_time.isoformat())
    assert status["ok"] is True and status["latest"] == {"size": 3, "gen_time": info.gen_time.isoformat()}
    assert status["failures"] == 0
    checked = openssl_verify(reply, text.encode(), pki.ca_cert, tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_a_newer_checkpoint_gets_its_own_time_stamp(
    tsa: OpensslTsa,  # noqa: F811
    pki: Pki,  # noqa: F811
    log: Log,
    store: SqliteStore,
) -> None:
    with _service(tsa.url, pki.ca_cert, log, store):
        _until(lambda: store.timestamp(0), "a time-stamp on the empty tree's checkpoint")
        log.append(devsecops_events(0, 2, "ts"))
        _until(lambda: store.timestamp(2), "a time-stamp on checkpoint 2")
    for size in (0, 2):
        reply = store.timestamp(size)
        assert reply is not None
        note = store.checkpoint_at(size)
        assert note is not None
        verify_timestamp(reply, parse_note(note)[0], load_trust(pki.ca_cert))


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("other-message", "another message: not this checkpoint"),
        ("flip", "time-stamp"),
        ("http-500", "HTTP 500"),
        ("wrong-type", "text/html, not application/timestamp-reply"),
    ],
)
def test_a_bad_answer_keeps_nothing_and_is_retried(
    tsa: OpensslTsa,  # noqa: F811
    pki: Pki,  # noqa: F811
    log: Log,
    store: SqliteStore,
    mode: str,
    error: str,
) -> None:
    tsa.mode = mode
    with _service(tsa.url, pki.ca_cert, log, store) as service:
        tsa.wait_for_requests(2)  # the first failure, and a retry after the backoff
        status = _until(lambda: (s := service.status())["failures"] >= 2 and s, "two failures")
        assert store.timestamp(0) is None
        assert status["ok"] is False
        assert error in status["last_error"]
        tsa.mode = "ok"
        _until(lambda: store.timestamp(0), "a time-stamp once the TSA answers well")
        assert service.status()["ok"] is True


def test_a_tsa_of_another_ca_is_not_trusted(
    tsa: OpensslTsa,  # noqa: F811
    other_pki: Pki,  # noqa: F811
    log: Log,
    store: SqliteStore,
) -> None:
    with _service(tsa.url, other_pki.ca_cert, log, store) as service:
        tsa.wait_for_requests(1)
        status = _until(lambda: (s := service.status())["failures"] >= 1 and s, "a failure")
    assert "certificate verify error" in status["last_error"]
    assert store.timestamp(0) is None


def test_an_unreachable_tsa(pki: Pki, log: Log, store: SqliteStore) -> None:  # noqa: F811
    with _service("http://127.0.0.1:9/tsr", pki.ca_cert, log, store, timeout=2) as service:
        status = _until(lambda: (s := service.status())["failures"] >= 1 and s, "a failure")
    assert "ConnectError" in status["last_error"]


def test_settings(pki: Pki, tmp_path: Path) -> None:  # noqa: F811
    base = pki.ca_cert.parent
    settings = parse_timestamping({"url": "https://tsa.example/tsr", "ca_file": pki.ca_cert.name, "interval": 60}, base)
    assert settings == TimestampingSettings("https://tsa.example/tsr", pki.ca_cert, None, 60.0, 10.0, 300.0)
    pinned = parse_timestamping({"url": "http://127.0.0.1/tsr", "ca_file": "ca.pem", "tsa_cert": "tsa.pem"}, base)
    assert pinned.trust().tsa_cert is not None
    bad = [
        ({}, "timestamping.url"),
        ({"url": "ftp://tsa.example/"}, "timestamping.url"),
        ({"url": "https://tsa.example/", "ca": "x"}, "unknown setting timestamping.ca"),
        ({"url": "https://tsa.example/", "ca_file": "missing.pem"}, "cannot read"),
        ({"url": "https://tsa.example/", "ca_file": "ca.pem", "interval": -1}, "timestamping.interval"),
        ({"url": "https://tsa.example/", "ca_file": "ca.pem", "timeout": 0}, "timestamping.timeout"),
        ({"url": "https://tsa.example/", "ca_file": "ca.pem", "retry_max": True}, "timestamping.retry_max"),
    ]
    for table, message in bad:
        with pytest.raises(ValueError, match=message):
            parse_timestamping(table, base)
    with pytest.raises(ValueError, match="must be a table"):
        parse_timestamping("https://tsa.example/", tmp_path)
