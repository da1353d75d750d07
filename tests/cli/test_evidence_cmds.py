"""`sealtrail evidence export|verify`, run for real: a bundle an auditor checks offline."""

from __future__ import annotations

import zipfile
from pathlib import Path

from _support import EXAMPLES, one_error_line
from conftest import run_cli


def _log_with_examples(tmp_path: Path) -> Path:
    directory = tmp_path / "log"
    assert run_cli("init", "--dir", directory, "--origin", "evidence.example/log").code == 0
    appended = run_cli("append", "--dir", directory, EXAMPLES)
    assert appended.code == 0, appended.stderr
    return directory


def test_export_then_verify_with_the_pinned_key(tmp_path: Path) -> None:
    directory = _log_with_examples(tmp_path)
    out = tmp_path / "evidence.zip"
    exported = run_cli("evidence", "export", out, "--dir", directory, "--index", "0", "--index", "2")
    assert exported.code == 0, exported.stderr
    names = set(zipfile.ZipFile(out).namelist())
    assert {"events/0.json", "events/2.json", "proofs/0.tlog-proof", "proofs/2.tlog-proof", "checkpoint"} <= names
    verified = run_cli("evidence", "verify", out, "--vkey", directory / "log.vkey")
    assert verified.code == 0, verified.stderr
    assert verified.text.startswith("ok: 2 events (0 redacted) proven in evidence.example/log")
    assert "warning" not in verified.stderr
    # a proof from the bundle also checks with the plain proof command
    inner = tmp_path / "proof"
    inner.write_bytes(zipfile.ZipFile(out).read("proofs/2.tlog-proof"))
    entry = tmp_path / "entry"
    entry.write_bytes(zipfile.ZipFile(out).read("events/2.json"))
    assert run_cli("verify-proof", inner, "--vkey", directory / "log.vkey", "--entry", entry).code == 0


def test_a_changed_event_is_named(tmp_path: Path) -> None:
    directory = _log_with_examples(tmp_path)
    out = tmp_path / "evidence.zip"
    assert run_cli("evidence", "export", out, "--dir", directory, "--index", "1").code == 0
    with zipfile.ZipFile(out) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["events/1.json"] = files["events/1.json"].replace(b'"kind":"', b'"kind":"x', 1)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    result = run_cli("evidence", "verify", tampered, "--vkey", directory / "log.vkey")
    assert result.code == 1
    assert one_error_line(result.stderr).startswith("error: evidence does NOT check out: events/1.json (entry 1)")


def test_another_logs_key_is_refused(tmp_path: Path) -> None:
    directory = _log_with_examples(tmp_path)
    other = tmp_path / "other"
    assert run_cli("init", "--dir", other, "--origin", "evidence.example/log").code == 0
    out = tmp_path / "evidence.zip"
    assert run_cli("evidence", "export", out, "--dir", directory, "--index", "0").code == 0
    result = run_cli("evidence", "verify", out, "--vkey", other / "log.vkey")
    assert result.code == 1
    assert "log.vkey: is not the key you trust" in result.stderr


def test_export_refuses_bad_requests_and_writes_nothing(tmp_path: Path) -> None:
    directory = _log_with_examples(tmp_path)
    out = tmp_path / "evidence.zip"
    nothing = run_cli("evidence", "export", out, "--dir", directory)
    assert nothing.code == 1 and "--query and/or --index" in nothing.stderr
    beyond = run_cli("evidence", "export", out, "--dir", directory, "--index", "99999")
    assert beyond.code == 1 and "not covered by the checkpoint" in beyond.stderr
    assert not out.exists()
    missing = run_cli("evidence", "verify", tmp_path / "nope.zip")
    assert missing.code == 1 and len(missing.stderr.strip().splitlines()) == 1


def test_export_by_search_query(tmp_path: Path) -> None:
    directory = _log_with_examples(tmp_path)
    out = tmp_path / "prod.zip"
    exported = run_cli("evidence", "export", out, "--dir", directory, "--query", "env:prod kind:auth")
    assert exported.code == 0, exported.stderr
    with zipfile.ZipFile(out) as archive:
        events = [name for name in archive.namelist() if name.startswith("events/")]
        bodies = [archive.read(name) for name in events]
    assert len(events) == 1 and b'"kind":"auth.failure"' in bodies[0]
    assert run_cli("evidence", "verify", out, "--vkey", directory / "log.vkey").code == 0
    none = run_cli("evidence", "export", tmp_path / "none.zip", "--dir", directory, "--query", "actor:nobody")
    assert none.code == 1 and "no events match" in none.stderr
    assert not (tmp_path / "none.zip").exists()
