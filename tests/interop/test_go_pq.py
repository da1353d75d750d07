"""Go's golang.org/x/mod/sumdb/note, which knows only Ed25519, accepts checkpoints that also carry ML-DSA-44.

c2sp.org/signed-note: "Verifiers MUST ignore signatures from unknown keys". A log made with
`init --pq` signs every checkpoint with its Ed25519 key and with an ML-DSA-44 key (type 0x06,
c2sp.org/tlog-cosignature); Go's note.Open must still open them with the Ed25519 vkey alone, and
Go's tlog must still verify the exported tiles log against them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_go_sumdb import _cli_output, _root_b64, go_verifier, run_go  # noqa: F401  (go_verifier: a fixture)

from _support import devsecops_events
from sealtrail.datadir import DataDir
from sealtrail.note import parse_note

ORIGIN = "interop.sealtrail.local/pq"
BATCHES = (1, 255, 44)


@pytest.fixture(scope="module")
def pq_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, Path, dict[int, bytes]]:
    root = tmp_path_factory.mktemp("interop-pq")
    data = DataDir(root / "log")
    data.init(ORIGIN, pq=True)
    with data.open_log(checkpoint_interval=0) as log:
        start = 0
        for count in BATCHES:
            log.append(devsecops_events(start, count, "go-pq"))
            start += count
    store = data.store()
    try:
        notes = dict(store.checkpoints())
    finally:
        store.close()
    tiles = root / "tiles"
    _cli_output("tiles", "export", "--dir", data.path, tiles)
    return data, tiles, notes


def test_every_checkpoint_has_two_signature_lines(pq_log: tuple[DataDir, Path, dict[int, bytes]]) -> None:
    _, _, notes = pq_log
    assert sorted(notes) == [0, 1, 256, 300]
    assert all(len(parse_note(note)[1]) == 2 for note in notes.values())


def test_go_note_open_accepts_them_with_the_ed25519_vkey(
    go_verifier: Path,  # noqa: F811
    pq_log: tuple[DataDir, Path, dict[int, bytes]],
    tmp_path: Path,
) -> None:
    data, _, notes = pq_log
    vkey = data.vkey.read_text().strip()
    for size, note in notes.items():
        path = tmp_path / f"checkpoint.{size}"
        path.write_bytes(note)
        result = run_go(go_verifier, "open", "-vkey", vkey, "-note", path)
        assert result.code == 0, result.stderr
        assert result.stdout == f"{ORIGIN}\n{size}\n{_root_b64(note)}\n"


def test_go_verifies_the_exported_tiles_log(
    go_verifier: Path,  # noqa: F811
    pq_log: tuple[DataDir, Path, dict[int, bytes]],
) -> None:
    data, tiles, notes = pq_log
    assert (tiles / "checkpoint").read_bytes() == notes[300]
    result = run_go(go_verifier, "tiles", "-dir", tiles, "-vkey", data.vkey)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"ok: {ORIGIN} size 300 root {_root_b64(notes[300])} verified by ")
