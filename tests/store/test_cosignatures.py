"""The SQLite store's cosignatures and witnessed tables: append-only, on signed checkpoints, added to older logs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from _support import devsecops_events
from sealtrail.cosignature import CosignatureSigner
from sealtrail.datadir import DataDir
from sealtrail.note import Signature, parse_note
from sealtrail.store.sqlite import SqliteStore


def _cosignature_line(note: bytes, name: str = "w.example/w") -> tuple[str, int, str]:
    text, _ = parse_note(note)
    signer = CosignatureSigner(name, bytes(range(32)), 1_700_000_000)
    line = Signature(name, signer.key_id, signer.sign(text.encode())).line()
    return name, signer.key_id, line


@pytest.fixture
def signed(data_dir: DataDir) -> tuple[DataDir, int, bytes]:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 3))
        size, note = log.sign_now()
    return data_dir, size, note


def test_cosignatures_are_kept_once_per_key_and_only_on_signed_checkpoints(signed: tuple[DataDir, int, bytes]) -> None:
    directory, size, note = signed
    store = directory.store()
    name, key_id, line = _cosignature_line(note)
    assert store.latest_cosigned(name, key_id) is None
    assert store.add_cosignature(size, name, key_id, line) is True
    assert store.add_cosignature(size, name, key_id, line) is False
    assert store.cosignatures(size) == [line]
    assert store.latest_cosigned(name, key_id) == size
    with pytest.raises(sqlite3.IntegrityError, match="each on a signed checkpoint"):
        store.add_cosignature(size + 1, name, key_id, line)
    assert store.witnessed(size) is None and store.latest_witnessed() is None
    assert store.add_witnessed(size, "1 of 1: w") is True
    assert store.add_witnessed(size, "another policy") is False
    assert (store.witnessed(size), store.latest_witnessed()) == ("1 of 1: w", (size, "1 of 1: w"))
    with pytest.raises(sqlite3.IntegrityError, match="each a signed checkpoint"):
        store.add_witnessed(size + 7, "1 of 1: w")
    store.close()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE cosignatures SET line = 'x'", "append-only"),
        ("DELETE FROM cosignatures", "append-only"),
        (
            "INSERT OR REPLACE INTO cosignatures SELECT size, key_name, key_id, 'x', added FROM cosignatures",
            "append-only",
        ),
        ("UPDATE witnessed SET policy = 'x'", "append-only"),
        ("DELETE FROM witnessed", "append-only"),
    ],
)
def test_an_attacker_cannot_change_or_drop_what_was_kept(
    signed: tuple[DataDir, int, bytes], statement: str, message: str
) -> None:
    directory, size, note = signed
    store = directory.store()
    name, key_id, line = _cosignature_line(note)
    store.add_cosignature(size, name, key_id, line)
    store.add_witnessed(size, "1 of 1: w")
    store.close()
    attacker = sqlite3.connect(directory.db, isolation_level=None)  # a plain session: the triggers hold
    with pytest.raises(sqlite3.IntegrityError, match=message):
        attacker.execute(statement)
    attacker.close()
    store = directory.store()
    assert store.cosignatures(size) == [line] and store.witnessed(size) == "1 of 1: w"
    store.close()


def test_a_log_made_before_the_tables_gets_them_when_opened(tmp_path: Path) -> None:
    directory = DataDir(tmp_path / "old")
    directory.init("old.sealtrail.test/log")
    with directory.open_log(checkpoint_interval=0) as log:
        size, note = log.sign_now()
    conn = sqlite3.connect(directory.db)
    conn.execute("DROP TABLE cosignatures")
    conn.execute("DROP TABLE witnessed")
    conn.commit()
    conn.close()
    store = SqliteStore.open(directory.db)
    name, key_id, line = _cosignature_line(note)
    assert store.add_cosignature(size, name, key_id, line) is True
    assert store.cosignatures(size) == [line]
    store.close()
