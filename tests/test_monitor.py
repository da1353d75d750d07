"""The monitor (sealtrail.monitor) against real logs: growth, forks at one size, rewrites that keep growing,
rollbacks, bad signatures, tampered tiles, Tessera's log, and its state file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _follow_fixtures import Branch, RecordingSource, TesseraStages
from _support import ORIGIN, rfc6962_leaf, rfc6962_root, static_http
from sealtrail.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from sealtrail.fetch import DirectorySource, HttpSource
from sealtrail.follow import CONFLICTING_FILE, TRUSTED_FILE, Kind
from sealtrail.merkle import verify_consistency
from sealtrail.monitor import Monitor, StateError, load_state
from sealtrail.note import b64decode_strict, b64encode, generate_ed25519, parse_verifier
from sealtrail.tiles import TileRef, TreeEdge


@pytest.fixture
def main_log(tmp_path: Path) -> Branch:
    branch = Branch.create(tmp_path / "log-a", "a")
    branch.grow(300, batch=100)
    return branch


def _monitor(source: Path, vkey: str, state: Path | None = None) -> Monitor:
    verifier = parse_verifier(vkey)
    return Monitor(DirectorySource(source), verifier.name, verifier, state)


def _monitoring(branch: Branch, site: Path, state: Path | None = None) -> Monitor:
    """`branch` published to `site`, and a monitor of it that has trusted its checkpoint on a first poll."""
    branch.publish(site)
    monitor = _monitor(site, branch.vkey, state)
    first = monitor.poll()
    assert first.kind is Kind.OK, first.message
    return monitor


def test_first_poll_trusts_a_checkpoint_whose_tiles_match_and_keeps_it(main_log: Branch, tmp_path: Path) -> None:
    site, state = tmp_path / "site", tmp_path / "state.json"
    main_log.publish(site)
    monitor = _monitor(site, main_log.vkey, state)
    first = monitor.poll()
    assert first.kind is Kind.OK and first.changed and "trusted on first use" in first.message
    saved = json.loads(state.read_text())
    expected = main_log.checkpoint()
    assert (saved["origin"], saved["size"], b64decode_strict(saved["root"])) == (ORIGIN, 300, expected.root)
    assert saved["checkpoint"].encode() == main_log.note()
    again = _monitor(site, main_log.vkey, state).poll()
    assert again.kind is Kind.OK and not again.changed and again.trusted == expected
    assert monitor.status.snapshot()["verified_size"] == 300


def test_growth_is_proved_consistent_from_a_few_tiles_only(main_log: Branch, tmp_path: Path) -> None:
    site = tmp_path / "site"
    main_log.publish(site)
    source = RecordingSource(DirectorySource(site))
    verifier = parse_verifier(main_log.vkey)
    monitor = Monitor(source, ORIGIN, verifier)
    assert monitor.poll().kind is Kind.OK
    main_log.grow(6000 - 300)
    main_log.publish(site)
    source.fetched.clear()
    grown = monitor.poll()
    assert grown.kind is Kind.OK and grown.changed, grown.message
    assert "consistent with size 300" in grown.message and grown.trusted == main_log.checkpoint()
    assert not any(path.startswith("tile/entries/") for path in source.fetched)
    assert len(source.fetched) <= 4, source.fetched  # the checkpoint and O(log n) tiles, not the 24 leaf tiles


def test_fork_at_the_same_size_is_reported_with_both_signed_checkpoints(main_log: Branch, tmp_path: Path) -> None:
    fork = main_log.fork(tmp_path / "log-b", "b")
    main_log.grow(50)
    fork.grow(50)
    site, state = tmp_path / "site", tmp_path / "state.json"
    monitor = _monitoring(main_log, site, state)
    trusted_state = state.read_bytes()
    fork.publish(site, fresh=True)
    seen = monitor.poll()
    assert seen.kind is Kind.FORK and seen.alarm
    evidence = seen.evidence
    assert evidence is not None
    assert evidence.trusted_note == main_log.note() and evidence.conflicting_note == fork.note()
    assert evidence.trusted.size == evidence.conflicting.size == 350
    assert evidence.trusted.root != evidence.conflicting.root
    verifier = parse_verifier(main_log.vkey)
    for note in (evidence.trusted_note, evidence.conflicting_note):
        assert open_checkpoint(note, ORIGIN, [verifier]).checkpoint.size == 350
    files = evidence.files()
    assert files[TRUSTED_FILE] == main_log.note() and files[CONFLICTING_FILE] == fork.note()
    assert state.read_bytes() == trusted_state  # nothing forked is ever trusted
    assert monitor.poll().kind is Kind.FORK  # and it stays reported
    assert monitor.status.snapshot()["fork_detected"] is True


def test_a_rewrite_that_keeps_growing_is_a_fork_proved_by_the_new_trees_own_tiles(
    main_log: Branch, tmp_path: Path
) -> None:
    fork = main_log.fork(tmp_path / "log-b", "b")
    main_log.grow(20)  # the monitor sees 320 entries of history A
    fork.grow(400)  # the operator then serves history B, which agrees only on the first 300
    site = tmp_path / "site"
    monitor = _monitoring(main_log, site)
    fork.publish(site, fresh=True)
    seen = monitor.poll()
    assert seen.kind is Kind.FORK, seen.message
    evidence = seen.evidence
    assert evidence is not None and evidence.implied_root is not None
    assert (evidence.trusted.size, evidence.conflicting.size) == (320, 700)
    # Anyone can check: the proof links B's root at 320 to B's signed checkpoint of 700 ...
    verify_consistency(320, 700, list(evidence.proof), evidence.implied_root, evidence.conflicting.root)
    # ... and that root is B's history (computed here independently), not the A checkpoint the monitor trusted.
    assert evidence.implied_root == rfc6962_root([rfc6962_leaf(e) for e in fork.entries()[:320]])
    assert evidence.implied_root != evidence.trusted.root == main_log.checkpoint().root
    body = evidence.to_json()
    assert body["consistency"]["implied_root"] == b64encode(evidence.implied_root)
    assert [b64decode_strict(h) for h in body["consistency"]["proof"]] == list(evidence.proof)


def test_rollback_to_a_smaller_checkpoint_is_reported_and_not_trusted(main_log: Branch, tmp_path: Path) -> None:
    site, state = tmp_path / "site", tmp_path / "state.json"
    monitor = _monitoring(main_log, site, state)
    (site / "checkpoint").write_bytes(main_log.note(100))  # an older checkpoint the log really signed
    seen = monitor.poll()
    assert seen.kind is Kind.ROLLBACK and seen.alarm and "size 100" in seen.message
    assert seen.evidence is not None and seen.evidence.conflicting_note == main_log.note(100)
    assert load_state(state, ORIGIN, parse_verifier(main_log.vkey)) is not None
    assert json.loads(state.read_text())["size"] == 300


def test_bad_signatures_are_reported_and_change_nothing(main_log: Branch, tmp_path: Path) -> None:
    site, state = tmp_path / "site", tmp_path / "state.json"
    monitor = _monitoring(main_log, site, state)
    before = state.read_bytes()
    real = main_log.checkpoint()
    impostor = generate_ed25519(ORIGIN)  # same name, another key
    (site / "checkpoint").write_bytes(sign_checkpoint(Checkpoint(ORIGIN, 400, real.root), impostor))
    assert monitor.poll().kind is Kind.BAD_SIGNATURE
    note = bytearray(main_log.note())
    note[note.index(b"\n") + 1] ^= 0x01  # one bit of the size line
    (site / "checkpoint").write_bytes(bytes(note))
    seen = monitor.poll()
    assert seen.kind is Kind.BAD_SIGNATURE and seen.note == bytes(note)
    assert state.read_bytes() == before


def test_a_changed_byte_in_a_tile_is_bad_tiles_not_a_fork(main_log: Branch, tmp_path: Path) -> None:
    site = tmp_path / "site"
    monitor = _monitoring(main_log, site)
    main_log.grow(600)
    main_log.publish(site)
    level1 = site / "tile/1/000.p/3"  # holds the root of tile 0, which both the old root and the proof use
    data = bytearray(level1.read_bytes())
    data[5] ^= 0x40
    level1.write_bytes(bytes(data))
    seen = monitor.poll()
    assert seen.kind is Kind.BAD_TILES and seen.alarm and seen.evidence is None, seen.message
    assert monitor.trusted is not None and monitor.trusted.checkpoint.size == 300


def test_missing_tiles_and_an_unreachable_source_are_unavailable(main_log: Branch, tmp_path: Path) -> None:
    site = tmp_path / "site"
    monitor = _monitoring(main_log, site)
    main_log.grow(600)
    main_log.publish(site)
    shutil.rmtree(site / "tile/1")
    seen = monitor.poll()
    assert seen.kind is Kind.UNAVAILABLE and not seen.alarm and "tile/1/000" in seen.message
    verifier = parse_verifier(main_log.vkey)
    gone = Monitor(HttpSource("http://127.0.0.1:9/log", timeout=2), ORIGIN, verifier)
    assert gone.poll().kind is Kind.UNAVAILABLE


def test_partial_tiles_deleted_after_the_log_grew_are_read_from_full_tiles(main_log: Branch, tmp_path: Path) -> None:
    site = tmp_path / "site"
    _monitoring(main_log, site)
    old_note = main_log.note()
    main_log.grow(700)
    main_log.publish(site)
    grown = main_log.note()
    deleted = [ref.path for ref in TreeEdge.edge_refs(300) if (site / TileRef(ref.level, ref.index).path).exists()]
    for path in deleted:  # as tlog-tiles allows once the full tiles exist
        (site / path).unlink()
    assert deleted == ["tile/0/001.p/44"]
    (site / "checkpoint").write_bytes(old_note)
    fresh = _monitor(site, main_log.vkey)
    assert fresh.poll().kind is Kind.OK  # tile/0/001.p/44 is read as the first 44 hashes of tile/0/001
    (site / "checkpoint").write_bytes(grown)
    assert fresh.poll().kind is Kind.OK


def test_tessera_log_growing_from_7_to_15_over_http(vectors: Path, tmp_path: Path) -> None:
    stages = TesseraStages(vectors, tmp_path / "tessera")
    stages.at(7)
    verifier = parse_verifier(stages.vkey)
    with static_http(stages.root) as url:
        monitor = Monitor(HttpSource(url), stages.origin, verifier, tmp_path / "state.json")
        first = monitor.poll()
        assert first.kind is Kind.OK and first.trusted is not None and first.trusted.size == 7, first.message
        stages.at(15)
        grown = monitor.poll()
        assert grown.kind is Kind.OK and grown.changed, grown.message
        assert (
            grown.trusted
            == open_checkpoint((stages.log / "checkpoint.15").read_bytes(), stages.origin, [verifier]).checkpoint
        )
        shutil.copyfile(stages.log / "checkpoint.7", stages.root / "checkpoint")
        assert monitor.poll().kind is Kind.ROLLBACK


def test_state_files_from_another_log_or_unreadable_are_refused(main_log: Branch, tmp_path: Path) -> None:
    verifier = parse_verifier(main_log.vkey)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"origin": "other.example/log", "size": 1, "root": b64encode(bytes(32))}))
    with pytest.raises(StateError, match=r"other\.example/log"):
        load_state(state, ORIGIN, verifier)
    state.write_text("{not json")
    with pytest.raises(StateError, match="unreadable"):
        load_state(state, ORIGIN, verifier)
    forged = {"origin": ORIGIN, "size": 301, "root": b64encode(bytes(32)), "checkpoint": main_log.note().decode()}
    state.write_text(json.dumps(forged))
    with pytest.raises(StateError, match="says size 300"):
        load_state(state, ORIGIN, verifier)
