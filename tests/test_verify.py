"""audit_store and `sealtrail verify` against a log tampered with through plain sqlite3.

The attacker has write access to log.db (and even log.skey): they drop the
append-only triggers and edit, delete, reorder or insert rows. Every such edit
must make `sealtrail verify --dir D` exit 1 with one line naming the first bad
index, or the tile or checkpoint at fault; the untouched log must pass.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from _support import (
    ORIGIN,
    attacker_connection,
    copy_log,
    devsecops_events,
    one_error_line,
    rfc6962_leaf,
    rfc6962_root,
    stored_entries,
)
from conftest import CliResult
from sealtrail.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.note import generate_ed25519
from sealtrail.verify import AuditError, audit_store

Cli = Callable[..., CliResult]

# Six batches; with checkpoint_interval=0 each is followed by a checkpoint.
BATCHES = (40, 60, 50, 70, 45, 35)
SIZE = sum(BATCHES)  # 300: one full level-0 tile, a partial one of 44, and tile/1/000.p/1
CHECKPOINTS = [0, 40, 100, 150, 220, 265, 300]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed log of 300 realistic DevSecOps events written in six batches."""
    directory = DataDir(tmp_path_factory.mktemp("template") / "log")
    directory.init(ORIGIN)
    with directory.open_log(checkpoint_interval=0) as log:
        start = 0
        for number, count in enumerate(BATCHES):
            # every third batch gives the events their own ids, the others rely on deliveries
            explicit = 7 if number % 3 == 0 else None
            receipts = log.append(devsecops_events(start, count, "tamper", explicit_id=explicit))
            assert [r.index for r in receipts] == list(range(start, start + count))
            start += count
    return directory.path


@pytest.fixture
def victim(template: Path, tmp_path: Path) -> DataDir:
    return DataDir(copy_log(template, tmp_path / "victim"))


def test_template_has_the_expected_shape(template: Path) -> None:
    conn = sqlite3.connect(f"file:{template / 'log.db'}?mode=ro", uri=True)
    try:
        sizes = [row[0] for row in conn.execute("SELECT size FROM checkpoints ORDER BY size")]
        tiles = conn.execute("SELECT level, idx, length(hashes) FROM tiles ORDER BY level, idx").fetchall()
    finally:
        conn.close()
    assert sizes == CHECKPOINTS
    assert tiles == [(0, 0, 8192), (0, 1, 44 * 32), (1, 0, 32)]


def test_untampered_log_verifies(victim: DataDir, cli: Cli) -> None:
    result = cli("verify", "--dir", victim.path)
    assert result.code == 0, result.stderr
    assert result.text.startswith(f"ok: {SIZE} entries and {len(CHECKPOINTS)} checkpoints verified")
    assert "error" not in result.stderr


def test_audit_store_report_on_intact_log(victim: DataDir) -> None:
    store = victim.store()
    try:
        report = audit_store(store, victim.verifier())
    finally:
        store.close()
    leaves = [rfc6962_leaf(entry) for _, entry in stored_entries(victim.db)]
    assert report.size == SIZE
    assert report.checkpoints == len(CHECKPOINTS)
    assert report.unsigned == 0
    assert report.latest is not None
    assert report.latest.size == SIZE
    assert report.latest.root == rfc6962_root(leaves)


def test_audit_store_progress_reaches_the_end(victim: DataDir) -> None:
    seen: list[int] = []
    store = victim.store()
    try:
        audit_store(store, victim.verifier(), seen.append)
    finally:
        store.close()
    assert seen
    assert seen == sorted(seen)
    assert seen[-1] == SIZE


# --- the tampering ------------------------------------------------------------------


def _entry(conn: sqlite3.Connection, index: int) -> bytes:
    return bytes(conn.execute("SELECT entry FROM events WHERE idx = ?", (index,)).fetchone()[0])


def _set_entry(conn: sqlite3.Connection, index: int, entry: bytes) -> None:
    conn.execute("UPDATE events SET entry = ? WHERE idx = ?", (entry, index))


def _edited(entry: bytes) -> bytes:
    """The same event with its outcome flipped, still canonical-looking JSON."""
    event = orjson.loads(entry)
    event["outcome"] = "failure" if event.get("outcome") != "failure" else "success"
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def _tile(conn: sqlite3.Connection, level: int, index: int) -> bytes:
    return bytes(conn.execute("SELECT hashes FROM tiles WHERE level = ? AND idx = ?", (level, index)).fetchone()[0])


def _set_tile(conn: sqlite3.Connection, level: int, index: int, hashes: bytes) -> None:
    conn.execute("UPDATE tiles SET hashes = ? WHERE level = ? AND idx = ?", (hashes, level, index))


def _set_note(conn: sqlite3.Connection, size: int, note: bytes) -> None:
    conn.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (note, size))


def edit_entry_57(conn: sqlite3.Connection, log: DataDir) -> None:
    _set_entry(conn, 57, _edited(_entry(conn, 57)))


def edit_entry_270_in_partial_tile(conn: sqlite3.Connection, log: DataDir) -> None:
    _set_entry(conn, 270, _edited(_entry(conn, 270)))


def flip_one_byte_of_entry_0(conn: sqlite3.Connection, log: DataDir) -> None:
    entry = bytearray(_entry(conn, 0))
    entry[len(entry) // 2] ^= 0x01
    _set_entry(conn, 0, bytes(entry))


def delete_row_120(conn: sqlite3.Connection, log: DataDir) -> None:
    conn.execute("DELETE FROM events WHERE idx = 120")


def delete_last_five_rows(conn: sqlite3.Connection, log: DataDir) -> None:
    conn.execute("DELETE FROM events WHERE idx >= ?", (SIZE - 5,))


def swap_rows_30_and_31(conn: sqlite3.Connection, log: DataDir) -> None:
    a, b = _entry(conn, 30), _entry(conn, 31)
    _set_entry(conn, 30, b)
    _set_entry(conn, 31, a)


def insert_row_at_end(conn: sqlite3.Connection, log: DataDir) -> None:
    forged = prepare({"source": {"type": "api", "id": "attacker"}, "kind": "deploy", "outcome": "success"})
    conn.execute("INSERT INTO events(idx, entry) VALUES (?, ?)", (SIZE, forged.entry))


def alter_hash_10_of_full_level0_tile(conn: sqlite3.Connection, log: DataDir) -> None:
    tile = bytearray(_tile(conn, 0, 0))
    tile[10 * 32] ^= 0x01
    _set_tile(conn, 0, 0, bytes(tile))


def alter_partial_level0_tile(conn: sqlite3.Connection, log: DataDir) -> None:
    tile = bytearray(_tile(conn, 0, 1))
    tile[20 * 32 + 5] ^= 0x80
    _set_tile(conn, 0, 1, bytes(tile))


def alter_level1_tile(conn: sqlite3.Connection, log: DataDir) -> None:
    _set_tile(conn, 1, 0, bytes(32))


def replace_level1_tile_by_delete_and_insert(conn: sqlite3.Connection, log: DataDir) -> None:
    conn.execute("DELETE FROM tiles WHERE level = 1")
    conn.execute("INSERT INTO tiles(level, idx, hashes) VALUES (1, 0, ?)", (b"\x42" * 32,))


def alter_stored_inner_levels_of_tile_0(conn: sqlite3.Connection, log: DataDir) -> None:
    """The cached inner nodes of a full tile feed proofs: they must match the tile too."""
    inner = bytearray(conn.execute("SELECT hashes FROM tile_inner WHERE level = 0 AND idx = 0").fetchone()[0])
    inner[100] ^= 0x01
    conn.execute("UPDATE tile_inner SET hashes = ? WHERE level = 0 AND idx = 0", (bytes(inner),))


def grow_partial_level0_tile(conn: sqlite3.Connection, log: DataDir) -> None:
    _set_tile(conn, 0, 1, _tile(conn, 0, 1) + b"\x07" * 32)


def insert_tile_beyond_the_tree(conn: sqlite3.Connection, log: DataDir) -> None:
    conn.execute("INSERT INTO tiles(level, idx, hashes) VALUES (0, 5, ?)", (b"\x03" * 64,))


def delete_last_level0_tile(conn: sqlite3.Connection, log: DataDir) -> None:
    conn.execute("DELETE FROM tiles WHERE level = 0 AND idx = 1")


def checkpoint_100_gets_the_note_of_150(conn: sqlite3.Connection, log: DataDir) -> None:
    note = bytes(conn.execute("SELECT note FROM checkpoints WHERE size = 150").fetchone()[0])
    _set_note(conn, 100, note)


def checkpoint_100_resigned_with_the_log_key(conn: sqlite3.Connection, log: DataDir) -> None:
    """The attacker also stole log.skey: a validly signed checkpoint of a rewritten history."""
    _set_note(conn, 100, sign_checkpoint(Checkpoint(ORIGIN, 100, b"\x05" * 32), log.signer()))


def checkpoint_300_resigned_with_the_log_key(conn: sqlite3.Connection, log: DataDir) -> None:
    _set_note(conn, SIZE, sign_checkpoint(Checkpoint(ORIGIN, SIZE, b"\x06" * 32), log.signer()))


def checkpoint_100_signed_by_another_key(conn: sqlite3.Connection, log: DataDir) -> None:
    other = generate_ed25519(ORIGIN)
    root = open_checkpoint(
        bytes(conn.execute("SELECT note FROM checkpoints WHERE size = 100").fetchone()[0]), ORIGIN, [log.verifier()]
    ).checkpoint.root
    _set_note(conn, 100, sign_checkpoint(Checkpoint(ORIGIN, 100, root), other))


def checkpoint_100_signature_byte_flipped(conn: sqlite3.Connection, log: DataDir) -> None:
    note = bytearray(conn.execute("SELECT note FROM checkpoints WHERE size = 100").fetchone()[0])
    note[-20] ^= 0x01  # inside the base64 of the signature
    _set_note(conn, 100, bytes(note))


@dataclass(frozen=True)
class Tamper:
    edit: Callable[[sqlite3.Connection, DataDir], None]
    names: str
    """What the one-line error must mention (the first bad index, or the tile or checkpoint at fault)."""


TAMPERS = [
    Tamper(edit_entry_57, "index 57"),
    Tamper(edit_entry_270_in_partial_tile, "index 270"),
    Tamper(flip_one_byte_of_entry_0, "index 0"),
    Tamper(delete_row_120, "index 120"),
    Tamper(delete_last_five_rows, f"index {SIZE - 5}"),
    Tamper(swap_rows_30_and_31, "index 30"),
    Tamper(insert_row_at_end, f"index {SIZE}"),
    Tamper(alter_hash_10_of_full_level0_tile, "tile/0/000"),
    Tamper(alter_partial_level0_tile, "tile/0/001.p/44"),
    Tamper(alter_level1_tile, "tile/1/000.p/1"),
    Tamper(replace_level1_tile_by_delete_and_insert, "tile/1/000.p/1"),
    Tamper(alter_stored_inner_levels_of_tile_0, "tile/0/000"),
    Tamper(grow_partial_level0_tile, f"index {SIZE}"),
    Tamper(insert_tile_beyond_the_tree, "tile/0/005"),
    Tamper(delete_last_level0_tile, "tile/0/001.p/44"),
    Tamper(checkpoint_100_gets_the_note_of_150, "checkpoint 100"),
    Tamper(checkpoint_100_resigned_with_the_log_key, "checkpoint 100"),
    Tamper(checkpoint_300_resigned_with_the_log_key, f"checkpoint {SIZE}"),
    Tamper(checkpoint_100_signed_by_another_key, "checkpoint 100"),
    Tamper(checkpoint_100_signature_byte_flipped, "checkpoint 100"),
]


def _names(expected: str, message: str) -> bool:
    """`expected` appears as a whole: "index 30" is not "index 300", "tile/0/000" not "tile/0/000.p/7"."""
    return re.search(rf"(?<![\w/]){re.escape(expected)}(?!\w|\.p/)", message) is not None


def _apply(tamper: Tamper, victim: DataDir) -> None:
    conn = attacker_connection(victim.db)
    try:
        tamper.edit(conn, victim)
    finally:
        conn.close()


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.edit.__name__ for t in TAMPERS])
def test_cli_verify_detects_tampering(tamper: Tamper, victim: DataDir, cli: Cli) -> None:
    _apply(tamper, victim)
    result = cli("verify", "--dir", victim.path)
    assert result.code == 1, (result.stdout, result.stderr)
    line = one_error_line(result.stderr)
    assert _names(tamper.names, line), line
    assert not result.stdout.startswith(b"ok")


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.edit.__name__ for t in TAMPERS])
def test_audit_store_detects_tampering(tamper: Tamper, victim: DataDir) -> None:
    _apply(tamper, victim)
    store = victim.store()
    try:
        with pytest.raises(AuditError) as caught:
            audit_store(store, victim.verifier())
    finally:
        store.close()
    message = str(caught.value)
    assert "\n" not in message
    assert _names(tamper.names, message), message


def test_triggers_are_what_stops_the_edit(victim: DataDir) -> None:
    """Control: the same edit without dropping the triggers is refused and the log stays intact."""
    conn = sqlite3.connect(victim.db, isolation_level=None)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            edit_entry_57(conn, victim)
    finally:
        conn.close()
    store = victim.store()
    try:
        assert audit_store(store, victim.verifier()).size == SIZE
    finally:
        store.close()


def test_verify_pinned_to_another_logs_key_fails(victim: DataDir, cli: Cli) -> None:
    other = generate_ed25519(ORIGIN)
    result = cli("verify", "--dir", victim.path, "--vkey", other.verifier.vkey)
    assert result.code == 1
    line = one_error_line(result.stderr)
    assert "checkpoint 0" in line  # the first checkpoint already fails to verify


def test_verify_pinned_to_its_own_key_passes(victim: DataDir, cli: Cli) -> None:
    result = cli("verify", "--dir", victim.path, "--vkey", victim.vkey.read_text().strip())
    assert result.code == 0, result.stderr
    assert result.text.startswith(f"ok: {SIZE} entries")


def test_replaced_vkey_file_does_not_hide_a_forged_history(victim: DataDir, cli: Cli) -> None:
    """An attacker who rewrites history and signs it with a new key must also replace log.vkey;
    pinning the published key catches it, trusting the directory's key does not."""
    published = victim.vkey.read_text().strip()
    conn = attacker_connection(victim.db)
    try:
        attacker = generate_ed25519(ORIGIN)
        rows = conn.execute("SELECT size, note FROM checkpoints").fetchall()
        for size, note in rows:
            root = open_checkpoint(bytes(note), ORIGIN, [victim.verifier()]).checkpoint.root
            _set_note(conn, int(size), sign_checkpoint(Checkpoint(ORIGIN, int(size), root), attacker))
    finally:
        conn.close()
    victim.vkey.write_text(attacker.verifier.vkey + "\n")
    assert cli("verify", "--dir", victim.path).code == 0
    pinned = cli("verify", "--dir", victim.path, "--vkey", published)
    assert pinned.code == 1
    assert "checkpoint 0" in one_error_line(pinned.stderr)


def test_row_appended_with_its_tile_reads_as_an_unsigned_entry(victim: DataDir, cli: Cli) -> None:
    """An entry added together with its leaf hash is what a crash between commit and signing
    leaves behind: not an error, but the audit must report it as not covered by a checkpoint."""
    forged = prepare({"source": {"type": "api", "id": "attacker"}, "kind": "deploy", "outcome": "success"})
    conn = attacker_connection(victim.db)
    try:
        conn.execute("INSERT INTO events(idx, entry) VALUES (?, ?)", (SIZE, forged.entry))
        _set_tile(conn, 0, 1, _tile(conn, 0, 1) + forged.leaf_hash)
    finally:
        conn.close()
    store = victim.store()
    try:
        report = audit_store(store, victim.verifier())
    finally:
        store.close()
    assert (report.size, report.unsigned) == (SIZE + 1, 1)
    assert report.latest is not None and report.latest.size == SIZE
    result = cli("verify", "--dir", victim.path)
    assert result.code == 0, result.stderr
    assert result.text.startswith(f"ok: {SIZE + 1} entries")
    assert "1 newest entries" in result.stderr


# --- a log large enough for the parallel audit ---------------------------------------------

LARGE = 17_000  # 67 level-0 tiles: more than one range of work for the audit's worker processes


@pytest.fixture(scope="module")
def large_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = DataDir(tmp_path_factory.mktemp("large") / "log")
    directory.init(ORIGIN)
    with directory.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 9_000, "large"))
        log.append(devsecops_events(9_000, LARGE - 9_000, "large"))
    return directory.path


LARGE_TAMPERS: dict[str, tuple[str, str]] = {
    "intact": ("", ""),
    "edit entry 100": (
        "UPDATE events SET entry = (SELECT entry FROM events WHERE idx = 101) WHERE idx = 100",
        "index 100",
    ),
    "edit entry 16500": (
        "UPDATE events SET entry = (SELECT entry FROM events WHERE idx = 3) WHERE idx = 16500",
        "index 16500",
    ),
    "delete row 16600": ("DELETE FROM events WHERE idx = 16600", "index 16600"),
}


@pytest.mark.parametrize("statement, names", LARGE_TAMPERS.values(), ids=LARGE_TAMPERS.keys())
def test_parallel_audit_names_the_first_bad_index(
    statement: str, names: str, large_template: Path, tmp_path: Path, cli: Cli
) -> None:
    victim = DataDir(copy_log(large_template, tmp_path / "victim"))
    if statement:
        conn = attacker_connection(victim.db)
        try:
            conn.execute(statement)
        finally:
            conn.close()
    store = victim.store()
    try:
        if not statement:
            assert audit_store(store, victim.verifier(), workers=2).size == LARGE
        else:
            with pytest.raises(AuditError) as caught:
                audit_store(store, victim.verifier(), workers=2)
            assert _names(names, str(caught.value)), caught.value
    finally:
        store.close()
    result = cli("verify", "--dir", victim.path)
    if not statement:
        assert result.code == 0, result.stderr
        assert result.text.startswith(f"ok: {LARGE} entries")
    else:
        assert result.code == 1
        line = one_error_line(result.stderr)
        assert _names(names, line), line
