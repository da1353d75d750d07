"""LogView: proofs and tiles read from a stored log must verify against its signed checkpoints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from _support import ORIGIN, devsecops_events, rfc6962_leaf, rfc6962_root, stored_entries
from sealtrail.checkpoint import open_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.event import PreparedEvent
from sealtrail.merkle import ProofError, verify_consistency, verify_inclusion
from sealtrail.store.base import StoreError
from sealtrail.tiles import decode_bundle, tile_width
from sealtrail.tlogproof import verify_tlog_proof
from sealtrail.view import LogView

SMALL_BATCHES = (1, 1, 2, 3, 5, 8, 13)  # checkpoints at 0, 1, 2, 4, 7, 12, 20, 33
BIG_BATCHES = (100, 155, 1, 1, 255, 1, 40)  # checkpoints at 0, 100, 255, 256, 257, 512, 513, 553


def _build(directory: DataDir, batches: tuple[int, ...], tag: str) -> None:
    directory.init(ORIGIN)
    with directory.open_log(checkpoint_interval=0) as log:
        start = 0
        for count in batches:
            log.append(devsecops_events(start, count, tag))
            start += count


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    directory = DataDir(tmp_path_factory.mktemp("view") / "small")
    _build(directory, SMALL_BATCHES, "small")
    return directory


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    directory = DataDir(tmp_path_factory.mktemp("view") / "big")
    _build(directory, BIG_BATCHES, "big")
    return directory


def _view(directory: DataDir) -> Iterator[LogView]:
    store = directory.store()
    try:
        yield LogView(store)
    finally:
        store.close()


@pytest.fixture
def small_view(small: DataDir) -> Iterator[LogView]:
    yield from _view(small)


@pytest.fixture
def big_view(big: DataDir) -> Iterator[LogView]:
    yield from _view(big)


def _roots(directory: DataDir, view: LogView) -> dict[int, bytes]:
    """Every stored checkpoint, signature-checked, as size -> root."""
    verifier = directory.verifier()
    roots = {}
    for size, note in view.store.checkpoints():
        checkpoint = open_checkpoint(note, ORIGIN, [verifier]).checkpoint
        assert checkpoint.size == size
        roots[size] = checkpoint.root
    return roots


def _prefix_sums(batches: tuple[int, ...]) -> list[int]:
    sizes = [0]
    for count in batches:
        sizes.append(sizes[-1] + count)
    return sizes


def test_checkpoint_roots_match_the_entries(small: DataDir, small_view: LogView) -> None:
    roots = _roots(small, small_view)
    assert sorted(roots) == _prefix_sums(SMALL_BATCHES)
    leaves = [rfc6962_leaf(entry) for _, entry in stored_entries(small.db)]
    for size, root in roots.items():
        assert root == rfc6962_root(leaves[:size])


def test_every_inclusion_proof_against_every_checkpoint(small: DataDir, small_view: LogView) -> None:
    roots = _roots(small, small_view)
    leaves = [rfc6962_leaf(entry) for _, entry in stored_entries(small.db)]
    checked = 0
    for size, root in roots.items():
        for index in range(size):
            proof = small_view.inclusion_proof(index, size)
            verify_inclusion(index, size, leaves[index], proof, root)
            checked += 1
            if size > 1:  # the proof binds the index and the leaf
                with pytest.raises(ProofError):
                    verify_inclusion((index + 1) % size, size, leaves[index], proof, root)
                with pytest.raises(ProofError):
                    verify_inclusion(index, size, leaves[(index + 1) % size], proof, root)
    assert checked == sum(_prefix_sums(SMALL_BATCHES))


def test_every_consistency_proof_between_checkpoints(small: DataDir, small_view: LogView) -> None:
    roots = _roots(small, small_view)
    sizes = sorted(size for size in roots if size > 0)
    for i, old in enumerate(sizes):
        for new in sizes[i:]:
            proof = small_view.consistency_proof(old, new)
            verify_consistency(old, new, proof, roots[old], roots[new])
            if old != new:
                with pytest.raises(ProofError):
                    verify_consistency(old, new, proof, roots[new], roots[old])


def test_tlog_proofs_verify_offline(small: DataDir, small_view: LogView) -> None:
    verifier = small.verifier()
    entries = dict(stored_entries(small.db))
    latest, _ = small_view.latest_checkpoint()
    for index in range(latest):
        data = small_view.tlog_proof(index).encode()
        proof, signed, leaf = verify_tlog_proof(data, ORIGIN, [verifier], entries[index])
        assert (proof.index, signed.checkpoint.size, leaf) == (index, latest, rfc6962_leaf(entries[index]))
    # against an older checkpoint
    data = small_view.tlog_proof(3, 7).encode()
    _, signed, _ = verify_tlog_proof(data, ORIGIN, [verifier], entries[3])
    assert signed.checkpoint.size == 7


def test_view_refuses_what_no_checkpoint_covers(small_view: LogView) -> None:
    latest, _ = small_view.latest_checkpoint()
    with pytest.raises(ProofError):
        small_view.tlog_proof(7, 7)  # index 7 is not in the tree of size 7
    with pytest.raises(StoreError):
        small_view.checkpoint(5)  # no checkpoint was signed at size 5
    with pytest.raises(ProofError):
        small_view.consistency_proof(4, latest + 1)
    with pytest.raises(StoreError):
        small_view.entry(latest)


def test_inclusion_and_consistency_across_tile_boundaries(big: DataDir, big_view: LogView) -> None:
    roots = _roots(big, big_view)
    assert sorted(roots) == _prefix_sums(BIG_BATCHES)
    leaves = [rfc6962_leaf(entry) for _, entry in stored_entries(big.db)]
    for size, root in roots.items():
        assert root == rfc6962_root(leaves[:size])
        indices = {0, size - 1, size // 2, 254, 255, 256, 511, 512} & set(range(size))
        for index in sorted(indices | set(range(0, size, 37))):
            verify_inclusion(index, size, leaves[index], big_view.inclusion_proof(index, size), root)
    sizes = sorted(size for size in roots if size > 0)
    for i, old in enumerate(sizes):
        for new in sizes[i:]:
            verify_consistency(old, new, big_view.consistency_proof(old, new), roots[old], roots[new])


def test_entry_bundles_and_hash_tiles_match(big: DataDir, big_view: LogView) -> None:
    entries = [entry for _, entry in stored_entries(big.db)]
    leaves = [rfc6962_leaf(entry) for entry in entries]
    for size in _prefix_sums(BIG_BATCHES)[1:]:
        for tile in range((size + 255) // 256):
            width = tile_width(0, tile, size)
            bundle = big_view.entry_bundle(tile, width, size)
            first = tile * 256
            assert decode_bundle(bundle, width) == entries[first : first + width]
            hashes = big_view.tile(0, tile, width, size)
            assert hashes == b"".join(leaves[first : first + width])
            assert [rfc6962_leaf(e) for e in decode_bundle(bundle, width)] == [
                hashes[i : i + 32] for i in range(0, len(hashes), 32)
            ]
        # level 1: one hash per full level-0 tile
        width = tile_width(1, 0, size)
        if width:
            level1 = big_view.tile(1, 0, width, size)
            assert level1 == b"".join(rfc6962_root(leaves[t * 256 : (t + 1) * 256]) for t in range(width))
    with pytest.raises(StoreError):
        big_view.entry_bundle(0, 100, 513)  # at size 513 tile 0 is full, not 100 wide
    with pytest.raises(StoreError):
        big_view.tile(0, 2, 2, 513)


def test_reference_tree_matches_go_sumdb_tlog(data_dir: DataDir, vectors: Path) -> None:
    """The eight RFC 6962 reference leaves, appended one per batch, give Go's exact proofs."""
    golden = json.loads((vectors / "merkle-proofs" / "rfc6962-all-proofs-size8.json").read_text())
    leaves = [bytes.fromhex(h) for h in golden["leaves_hex"]]
    with data_dir.open_log(checkpoint_interval=0) as log:
        for number, entry in enumerate(leaves):
            key = hashlib.sha256(b"reference %d" % number).digest()[:16]
            event = PreparedEvent(key.hex(), (key,), entry, rfc6962_leaf(entry), None)
            assert log.append([event])[0].index == number
    store = data_dir.store()
    try:
        view = LogView(store)
        roots = _roots(data_dir, view)
        assert [roots[size].hex() for size in range(1, 9)] == golden["roots"]
        for case in golden["inclusion"]:
            proof = view.inclusion_proof(case["index"], case["tree_size"])
            assert [h.hex() for h in proof] == case["proof"], case
        for case in golden["consistency"]:
            proof = view.consistency_proof(case["old_size"], case["new_size"])
            assert [h.hex() for h in proof] == case["proof"], case
    finally:
        store.close()
