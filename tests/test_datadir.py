"""A log directory made with `pq=True`: an ML-DSA-44 key beside the Ed25519 one, both signing every checkpoint."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from _support import attacker_connection, devsecops_events
from sealtrail.checkpoint import open_checkpoint, sign_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.integrity import IntegrityMonitor
from sealtrail.mldsa import generate_mldsa44, parse_mldsa_signer
from sealtrail.note import Signature, open_note, parse_note
from sealtrail.store.base import StoreError
from sealtrail.verify import AuditError, audit_store

ORIGIN = "test.sealtrail.local/pq"


@pytest.fixture
def pq_dir(tmp_path: Path) -> DataDir:
    directory = DataDir(tmp_path / "pq")
    directory.init(ORIGIN, pq=True)
    with directory.open_log(checkpoint_interval=0) as log:
        for start, count in ((0, 3), (3, 3), (6, 5)):
            log.append(devsecops_events(start, count, "pq"))
    return directory


def _notes(directory: DataDir) -> dict[int, bytes]:
    store = directory.store()
    try:
        return dict(store.checkpoints())
    finally:
        store.close()


def _set_note(db: Path, size: int, note: bytes) -> None:
    conn = attacker_connection(db)
    try:
        conn.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (note, size))
    finally:
        conn.close()


def _audit(directory: DataDir, *, pq: bool = True) -> None:
    mldsa = directory.mldsa_verifier()
    assert mldsa is not None
    store = directory.store()
    try:
        audit_store(store, directory.verifier(), required=[mldsa] if pq else [])
    finally:
        store.close()


def test_init_writes_the_ml_dsa_key_owner_only(pq_dir: DataDir) -> None:
    assert stat.S_IMODE(pq_dir.mldsa_skey.stat().st_mode) == 0o600
    signer = parse_mldsa_signer(pq_dir.mldsa_skey.read_text())
    verifier = pq_dir.mldsa_verifier()
    assert verifier is not None
    assert verifier == signer.verifier
    assert verifier.name == ORIGIN == pq_dir.verifier().name
    assert verifier.key_id != pq_dir.verifier().key_id


def test_every_checkpoint_carries_both_signatures(pq_dir: DataDir) -> None:
    notes = _notes(pq_dir)
    assert sorted(notes) == [0, 3, 6, 11]
    ed, pq = pq_dir.verifier(), pq_dir.mldsa_verifier()
    assert pq is not None
    for size, note in notes.items():
        _, signatures = parse_note(note)
        assert [(s.name, s.key_id) for s in signatures] == [(ORIGIN, ed.key_id), (ORIGIN, pq.key_id)]
        opened = open_checkpoint(note, ORIGIN, [ed], required=[pq])
        assert opened.checkpoint.size == size
        assert len(opened.note.verified) == 2
        # An Ed25519-only client sees the ML-DSA-44 line as an unknown key's and ignores it.
        assert [s.key_id for s in open_note(note, [ed]).unverified] == [pq.key_id]
    _audit(pq_dir)


def test_a_log_without_pq_signs_with_ed25519_only(data_dir: DataDir, tmp_path: Path) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 2, "ed"))
    assert data_dir.mldsa_verifier() is None and data_dir.mldsa_signer() is None
    for note in _notes(data_dir).values():
        assert len(parse_note(note)[1]) == 1


def test_audit_requires_the_ml_dsa_signature(pq_dir: DataDir) -> None:
    """Someone holding only the Ed25519 key (or a quantum computer) re-signs checkpoint 6 without ML-DSA-44."""
    notes = _notes(pq_dir)
    checkpoint = open_checkpoint(notes[6], ORIGIN, [pq_dir.verifier()]).checkpoint
    _set_note(pq_dir.db, 6, sign_checkpoint(checkpoint, pq_dir.signer()))
    _audit(pq_dir, pq=False)  # the Ed25519 signature alone is still valid
    with pytest.raises(AuditError, match="checkpoint 6: no signature by the required key"):
        _audit(pq_dir)


def test_audit_rejects_a_damaged_ml_dsa_signature(pq_dir: DataDir) -> None:
    text, (ed_line, pq_line) = parse_note(_notes(pq_dir)[11])
    damaged = bytearray(pq_line.signature)
    damaged[1000] ^= 0x20
    forged = Signature(pq_line.name, pq_line.key_id, bytes(damaged))
    _set_note(pq_dir.db, 11, (text + "\n" + ed_line.line() + forged.line()).encode())
    with pytest.raises(AuditError, match="checkpoint 11: invalid signature"):
        _audit(pq_dir)


def test_audit_rejects_an_ml_dsa_signature_by_another_key(pq_dir: DataDir) -> None:
    """A checkpoint signed by an impostor ML-DSA-44 key of the same name does not carry the log's."""
    notes = _notes(pq_dir)
    checkpoint = open_checkpoint(notes[3], ORIGIN, [pq_dir.verifier()]).checkpoint
    _set_note(pq_dir.db, 3, sign_checkpoint(checkpoint, pq_dir.signer(), generate_mldsa44(ORIGIN)))
    with pytest.raises(AuditError, match="checkpoint 3: no signature by the required key"):
        _audit(pq_dir)


def test_a_published_ml_dsa_vkey_without_its_key_refuses_to_sign(pq_dir: DataDir) -> None:
    pq_dir.mldsa_skey.unlink()
    with pytest.raises(StoreError, match=r"log-mldsa\.vkey is published but its key"):
        pq_dir.open_log()


def test_a_readable_ml_dsa_key_is_refused(pq_dir: DataDir) -> None:
    os.chmod(pq_dir.mldsa_skey, 0o644)
    with pytest.raises(StoreError, match="readable by others"):
        pq_dir.open_log()


def test_an_ml_dsa_key_named_for_another_log_is_refused(pq_dir: DataDir) -> None:
    other = generate_mldsa44("other.example/log")
    os.chmod(pq_dir.mldsa_skey, 0o600)
    pq_dir.mldsa_skey.write_text(other.skey + "\n")
    with pytest.raises(StoreError, match=r"other\.example/log"):
        pq_dir.open_log()


def test_no_checkpoint_is_written_after_a_refused_open(pq_dir: DataDir) -> None:
    before = _notes(pq_dir)
    pq_dir.mldsa_skey.unlink()
    with pytest.raises(StoreError):
        pq_dir.open_log()
    assert _notes(pq_dir) == before
    conn = sqlite3.connect(pq_dir.db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == len(before)
    finally:
        conn.close()


def test_the_periodic_audit_of_serve_requires_the_ml_dsa_signature(pq_dir: DataDir) -> None:
    """IntegrityMonitor, as `serve` sets it up for a log with an ML-DSA-44 key."""
    mldsa = pq_dir.mldsa_verifier()
    assert mldsa is not None
    alarms: list[tuple[str, str]] = []
    with pq_dir.open_log(checkpoint_interval=0) as log:
        monitor = IntegrityMonitor(
            pq_dir.db,
            pq_dir.verifier(),
            3600,
            log,
            [lambda origin, message: alarms.append((origin, message))],
            required=[mldsa],
        )
        assert monitor.run_once().ok is True
        checkpoint = open_checkpoint(_notes(pq_dir)[3], ORIGIN, [pq_dir.verifier()]).checkpoint
        _set_note(pq_dir.db, 3, sign_checkpoint(checkpoint, pq_dir.signer()))
        failed = monitor.run_once()
    assert failed.ok is False
    assert failed.error is not None and "checkpoint 3: no signature by the required key" in failed.error
    assert alarms == [(ORIGIN, failed.error)]


def test_init_refuses_an_origin_too_long_for_ml_dsa_and_writes_nothing(tmp_path: Path) -> None:
    """The ML-DSA-44 message holds the name in 255 bytes; Ed25519 has no such limit."""
    directory = DataDir(tmp_path / "long")
    origin = "example.com/" + "x" * 250
    with pytest.raises(StoreError, match="key name"):
        directory.init(origin, pq=True)
    assert not directory.path.exists()
    directory.init(origin)  # without --pq the same origin is fine
    assert directory.mldsa_verifier() is None
