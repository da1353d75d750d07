"""The witness state: each refusal of `advance`, atomicity under concurrent requests, restarts, and the triggers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from _witness_fixtures import MemoryLog
from sealtrail.cosignature import CosignatureVerifier
from sealtrail.merkle import EMPTY_ROOT
from sealtrail.witness import state as state_module
from sealtrail.witness.protocol import Refusal
from sealtrail.witness.state import WitnessState

ORIGIN = "example.com/log"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[WitnessState]:
    opened = WitnessState(tmp_path / "witness.db")
    yield opened
    opened.close()


@pytest.fixture
def log(state: WitnessState) -> MemoryLog:
    log = MemoryLog(ORIGIN).grow(10)
    state.add_log(ORIGIN, log.vkey)
    return log


def advance(state: WitnessState, log: MemoryLog, old: int, size: int, proof: list[bytes] | None = None) -> None:
    if proof is None:
        proof = log.proof(old, size) if 0 < old < size else []
    state.advance(log.origin, old, size, log.root(size), proof, log.request(old, size, proof))


def refusal(state: WitnessState, log: MemoryLog, old: int, size: int, proof: list[bytes] | None = None) -> Refusal:
    with pytest.raises(Refusal) as caught:
        advance(state, log, old, size, proof)
    return caught.value


def test_a_new_log_starts_at_the_empty_tree(state: WitnessState, log: MemoryLog) -> None:
    stored = state.log(ORIGIN)
    assert stored is not None
    assert (stored.size, stored.root, stored.keys) == (0, EMPTY_ROOT, (log.vkey,))
    assert state.keys("other.example/log") is None and state.log("other.example/log") is None


def test_add_log_again_adds_a_key_once(state: WitnessState, log: MemoryLog) -> None:
    assert state.add_log(ORIGIN, log.vkey) is False
    rotated = MemoryLog(ORIGIN)
    assert state.add_log(ORIGIN, rotated.vkey) is False
    assert sorted(state.keys(ORIGIN) or []) == sorted([log.vkey, rotated.vkey])
    assert [s.origin for s in state.logs()] == [ORIGIN]


@pytest.mark.parametrize(
    "vkey",
    [
        "not a key",
        "example.com/log+00000000+AQ==",
        CosignatureVerifier("example.com/log", bytes(32)).vkey,  # a witness key, not a log key
    ],
)
def test_add_log_refuses_a_bad_key(state: WitnessState, vkey: str) -> None:
    with pytest.raises(ValueError, match="log key"):
        state.add_log(ORIGIN, vkey)
    assert state.logs() == []


def test_the_log_grows_from_zero_then_by_consistency_proofs(state: WitnessState, log: MemoryLog) -> None:
    advance(state, log, 0, 3)
    advance(state, log, 3, 3)  # the same tree again: nothing changes, the witness may cosign it again
    advance(state, log, 3, 8)
    advance(state, log, 8, 10)
    stored = state.log(ORIGIN)
    assert stored is not None and (stored.size, stored.root) == (10, log.root())
    assert state.evidence(ORIGIN) == []


def test_404_unknown_origin(state: WitnessState, log: MemoryLog) -> None:
    other = MemoryLog("other.example/log").grow(2)
    assert refusal(state, other, 0, 2).status == 404


def test_400_old_size_above_the_checkpoint(state: WitnessState, log: MemoryLog) -> None:
    advance(state, log, 0, 5)
    refused = refusal(state, log, 5, 4, [])
    assert (refused.status, refused.size) == (400, None)
    assert "larger than the checkpoint's size 4" in refused.message


def test_409_stale_old_size_names_the_stored_size(state: WitnessState, log: MemoryLog) -> None:
    advance(state, log, 0, 5)
    for old in (0, 3, 7):
        refused = refusal(state, log, old, 9)
        assert (refused.status, refused.size) == (409, 5)
    stored = state.log(ORIGIN)
    assert stored is not None and stored.size == 5


def test_409_same_size_other_root_is_kept_as_evidence(state: WitnessState, log: MemoryLog) -> None:
    advance(state, log, 0, 6)
    forged = log.fork(4)
    refused = refusal(state, forged, 6, 6, [])
    assert (refused.status, refused.size) == (409, None)
    assert "forked" in refused.message
    stored = state.log(ORIGIN)
    assert stored is not None and stored.root == log.root(6)
    [evidence] = state.evidence(ORIGIN)
    assert evidence.status == 409 and evidence.request == forged.request(6, 6, [])


def test_422_a_proof_that_does_not_verify(state: WitnessState, log: MemoryLog) -> None:
    advance(state, log, 0, 4)
    forged = log.fork(2)
    refused = refusal(state, forged, 4, 10, forged.proof(4, 10))  # a proof of the forged tree, not from ours
    assert refused.status == 422
    honest = log.proof(4, 10)
    assert refusal(state, log, 4, 10, honest[:-1]).status == 422  # truncated
    assert refusal(state, log, 4, 10, [*honest, honest[0]]).status == 422  # padded
    assert refusal(state, log, 4, 10, honest[::-1]).status == 422  # reordered
    assert refusal(state, log, 4, 4, [honest[0]]).status == 422  # same size needs an empty proof
    assert len(state.evidence(ORIGIN)) == 5
    stored = state.log(ORIGIN)
    assert stored is not None and (stored.size, stored.root) == (4, log.root(4))


def test_422_from_size_zero_the_proof_must_be_empty(state: WitnessState, log: MemoryLog) -> None:
    refused = refusal(state, log, 0, 4, [log.root(2)])
    assert refused.status == 422 and "must be empty" in refused.message


def test_409_an_empty_tree_with_another_root(state: WitnessState, log: MemoryLog) -> None:
    """Size 0 is a size like any other: its root is SHA-256 of nothing (torchwood's TestZeroSize)."""
    with pytest.raises(Refusal) as caught:
        state.advance(ORIGIN, 0, 0, log.root(1), [], b"request")
    assert (caught.value.status, caught.value.size) == (409, None)
    state.advance(ORIGIN, 0, 0, EMPTY_ROOT, [], b"request")


def test_evidence_is_bounded_per_log(state: WitnessState, log: MemoryLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "EVIDENCE_PER_LOG", 2)
    advance(state, log, 0, 6)
    for keep in range(3):
        assert refusal(state, log.fork(keep, tag=f"f{keep}"), 6, 6, []).status == 409
    assert len(state.evidence(ORIGIN)) == 2


def _race(path: Path, log: MemoryLog, old: int, targets: list[int]) -> list[tuple[int, int | None]]:
    """Advance from `old` to each target at once, one thread and connection each: (status, size) per thread."""
    barrier = threading.Barrier(len(targets))
    outcomes: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def advance_to(target: int) -> None:
        state = WitnessState(path)
        proof = log.proof(old, target) if old else []
        barrier.wait()
        try:
            state.advance(ORIGIN, old, target, log.root(target), proof, b"")
            outcome: tuple[int, int | None] = (200, target)
        except Refusal as refused:
            outcome = (refused.status, refused.size)
        finally:
            state.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=advance_to, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_requests_from_the_same_old_size_never_both_succeed(tmp_path: Path) -> None:
    """Each round, 6 threads (each with its own connection) race from the same stored size with
    different, each consistent, larger trees: exactly one wins and the others see 409 naming its size."""
    log = MemoryLog(ORIGIN).grow(200)
    setup = WitnessState(tmp_path / "witness.db")
    setup.add_log(ORIGIN, log.vkey)
    size = 0
    for _ in range(12):
        outcomes = _race(tmp_path / "witness.db", log, size, [size + 1 + k for k in range(6)])
        winners = [target for status, target in outcomes if status == 200 and target is not None]
        assert len(winners) == 1, outcomes
        assert sorted(outcomes) == sorted([(200, winners[0])] + [(409, winners[0])] * 5)
        stored = setup.log(ORIGIN)
        assert stored is not None and (stored.size, stored.root) == (winners[0], log.root(winners[0]))
        size = winners[0]
    setup.close()


def test_state_survives_a_restart(tmp_path: Path) -> None:
    log = MemoryLog(ORIGIN).grow(9)
    state = WitnessState(tmp_path / "witness.db")
    state.add_log(ORIGIN, log.vkey)
    advance(state, log, 0, 7)
    state.close()
    reopened = WitnessState(tmp_path / "witness.db")
    stored = reopened.log(ORIGIN)
    assert stored is not None and (stored.size, stored.root, stored.keys) == (7, log.root(7), (log.vkey,))
    refused = refusal(reopened, log, 0, 9)
    assert (refused.status, refused.size) == (409, 7)
    advance(reopened, log, 7, 9)
    reopened.close()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE logs SET size = 3", "never rolled back"),
        ("UPDATE logs SET root = zeroblob(32)", "never rolled back"),
        ("UPDATE logs SET origin = 'x'", "never rolled back"),
        ("DELETE FROM logs", "never forgotten"),
        (
            "INSERT OR REPLACE INTO logs(origin, size, root, updated) VALUES ('example.com/log', 0, zeroblob(32), '')",
            "replaced",
        ),
    ],
)
def test_triggers_refuse_rollbacks_inside_the_database(tmp_path: Path, statement: str, message: str) -> None:
    log = MemoryLog(ORIGIN).grow(5)
    state = WitnessState(tmp_path / "witness.db")
    state.add_log(ORIGIN, log.vkey)
    advance(state, log, 0, 5)
    state.close()
    attacker = sqlite3.connect(tmp_path / "witness.db")
    with pytest.raises(sqlite3.IntegrityError, match=message):
        attacker.execute(statement)
    attacker.close()
    reopened = WitnessState(tmp_path / "witness.db")
    stored = reopened.log(ORIGIN)
    assert stored is not None and (stored.size, stored.root) == (5, log.root(5))
    reopened.close()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "witness.db"
    path.write_bytes(b"not sqlite" * 100)
    with pytest.raises(ValueError, match="not a witness database"):
        WitnessState(path)
