"""RFC 6962 / RFC 9162 Merkle hashing and proofs: golden vectors and properties.

Golden data: transparency-dev/merkle probes and Go sumdb/tlog proofs in
../shared/vectors/merkle-proofs. Properties compare against a small recursive
reference written straight from RFC 9162 §2.1 with hashlib.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rfc9162_reference import (
    consistency_len,
    path_len,
    ref_consistency,
    ref_leaf,
    ref_mth,
    ref_path,
    subtree_table,
)
from sealtrail.merkle import (
    EMPTY_ROOT,
    Node,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_hash,
    tree_hash,
    verify_append_only,
    verify_consistency,
    verify_inclusion,
)

MERKLE = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors" / "merkle-proofs"
MAX_SIZE = 3000
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def leaves() -> list[bytes]:
    """Distinct leaf hashes for entries 0..MAX_SIZE-1."""
    return [ref_leaf(b"entry %d" % i) for i in range(MAX_SIZE)]


@cache
def levels() -> list[list[bytes]]:
    """levels[l][i] = MTH of the complete subtree (l, i) over leaves()."""
    return subtree_table(leaves())


class Reader:
    """A NodeReader over the reference tree that refuses nodes not complete at `size`."""

    def __init__(self, size: int, table: list[list[bytes]] | None = None) -> None:
        self.size = size
        self.table = levels() if table is None else table
        self.calls: list[list[Node]] = []

    def __call__(self, nodes: Sequence[Node]) -> list[bytes]:
        self.calls.append(list(nodes))
        out = []
        for level, index in nodes:
            assert level >= 0
            assert index >= 0
            assert (index + 1) << level <= self.size, f"node {(level, index)} is not complete at size {self.size}"
            out.append(self.table[level][index])
        return out


def b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def vector_files(kind: str) -> list[Path]:
    files = sorted((MERKLE / kind).rglob("*.json"))
    assert files, f"no vectors under {MERKLE / kind}"
    return files


def vector_id(path: Path) -> str:
    return str(path.relative_to(MERKLE))


# --- hashing primitives ----------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root_hash([]) == EMPTY_ROOT
    assert tree_hash(0, Reader(0)) == EMPTY_ROOT


@pytest.mark.parametrize("entry", [b"", b"\x00", b"hello", bytes(range(256)) * 300])
def test_leaf_hash_is_domain_separated_sha256(entry: bytes) -> None:
    assert leaf_hash(entry) == hashlib.sha256(b"\x00" + entry).digest()


def test_node_hash_is_domain_separated_sha256() -> None:
    left, right = hashlib.sha256(b"l").digest(), hashlib.sha256(b"r").digest()
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)


# --- golden vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("path", vector_files("inclusion"), ids=vector_id)
def test_inclusion_vector(path: Path) -> None:
    case: dict[str, Any] = json.loads(path.read_text())
    proof = [b64(h) for h in case["proof"] or []]
    args = (case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof, b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", vector_files("consistency"), ids=vector_id)
def test_consistency_vector(path: Path) -> None:
    case: dict[str, Any] = json.loads(path.read_text())
    proof = [b64(h) for h in case["proof"] or []]
    args = (case["size1"], case["size2"], proof, b64(case["root1"]), b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_vector_sets_have_happy_paths_and_failures() -> None:
    """Guard against a vector directory that silently holds only one kind of case."""
    for kind in ("inclusion", "consistency"):
        wants = [json.loads(p.read_text())["wantErr"] for p in vector_files(kind)]
        assert wants.count(False) >= 5
        assert wants.count(True) >= 50


def test_rfc6962_reference_roots(vectors: Path) -> None:
    data = json.loads((vectors / "merkle-proofs" / "rfc6962-reference-roots.json").read_text())
    inputs = [bytes.fromhex(h) for h in data["leaf_inputs_hex"]]
    hashes = [leaf_hash(d) for d in inputs]
    table = subtree_table(hashes)
    expected = data["root_by_size_hex"]
    assert len(expected) == 9
    for size in range(9):
        assert root_hash(hashes[:size]).hex() == expected[size], size
        assert tree_hash(size, Reader(size, table)).hex() == expected[size], size


@cache
def _size8() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((MERKLE / "rfc6962-all-proofs-size8.json").read_text())
    return data


def _size8_table() -> list[list[bytes]]:
    return subtree_table([leaf_hash(bytes.fromhex(h)) for h in _size8()["leaves_hex"]])


def test_size8_roots() -> None:
    data = _size8()
    hashes = [leaf_hash(bytes.fromhex(h)) for h in data["leaves_hex"]]
    assert [root_hash(hashes[: n + 1]).hex() for n in range(8)] == data["roots"]


def test_size8_every_inclusion_proof_generated_byte_for_byte() -> None:
    table = _size8_table()
    cases = _size8()["inclusion"]
    assert {(c["index"], c["tree_size"]) for c in cases} == {(i, n) for n in range(1, 9) for i in range(n)}
    for case in cases:
        index, size = case["index"], case["tree_size"]
        want = [bytes.fromhex(h) for h in case["proof"]]
        got = inclusion_proof(index, size, Reader(size, table))
        assert got == want, (index, size)
        leaf = bytes.fromhex(case["leaf_hash"])
        assert leaf == table[0][index]
        verify_inclusion(index, size, leaf, got, bytes.fromhex(case["root"]))
        assert root_from_inclusion_proof(index, size, leaf, got).hex() == case["root"]


def test_size8_every_consistency_proof_generated_byte_for_byte() -> None:
    table = _size8_table()
    cases = _size8()["consistency"]
    assert {(c["old_size"], c["new_size"]) for c in cases} == {(m, n) for n in range(1, 9) for m in range(1, n + 1)}
    for case in cases:
        old, new = case["old_size"], case["new_size"]
        want = [bytes.fromhex(h) for h in case["proof"]]
        got = consistency_proof(old, new, Reader(new, table))
        assert got == want, (old, new)
        old_root, new_root = bytes.fromhex(case["old_root"]), bytes.fromhex(case["new_root"])
        verify_consistency(old, new, got, old_root, new_root)
        verify_append_only(old, new, got, old_root, new_root)


# --- properties against the reference ----------------------------------------------------


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    index = draw(st.one_of(st.integers(0, size - 1), st.just(size - 1), st.just(0)))
    return size, index


@st.composite
def old_and_new(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, MAX_SIZE))
    old = draw(st.one_of(st.integers(1, new), st.just(new), st.just(1)))
    return old, new


@PROPERTY
@given(size_and_index())
def test_generated_inclusion_proof_matches_rfc9162_and_verifies(case: tuple[int, int]) -> None:
    size, index = case
    hashes = leaves()[:size]
    root = ref_mth(hashes)
    reader = Reader(size)
    proof = inclusion_proof(index, size, reader)
    assert proof == ref_path(index, hashes)
    assert len(reader.calls) <= 1
    assert tree_hash(size, Reader(size)) == root
    assert root_hash(hashes) == root
    assert root_from_inclusion_proof(index, size, hashes[index], proof) == root
    verify_inclusion(index, size, hashes[index], proof, root)


@PROPERTY
@given(old_and_new())
def test_generated_consistency_proof_matches_rfc9162_and_verifies(case: tuple[int, int]) -> None:
    old, new = case
    hashes = leaves()[:new]
    old_root, new_root = ref_mth(hashes[:old]), ref_mth(hashes)
    reader = Reader(new)
    proof = consistency_proof(old, new, reader)
    assert proof == ref_consistency(old, hashes)
    assert len(reader.calls) <= 1
    verify_consistency(old, new, proof, old_root, new_root)
    verify_append_only(old, new, proof, old_root, new_root)


def _flip_bit(proof: list[bytes], data: st.DataObject) -> list[bytes]:
    i = data.draw(st.integers(0, len(proof) - 1), label="element")
    bit = data.draw(st.integers(0, 255), label="bit")
    mutated = list(proof)
    element = bytearray(mutated[i])
    element[bit // 8] ^= 1 << (bit % 8)
    mutated[i] = bytes(element)
    return mutated


def _mutate(proof: list[bytes], how: str, data: st.DataObject) -> list[bytes]:
    if how == "flip":
        assume(proof)
        return _flip_bit(proof, data)
    if how == "drop":
        assume(proof)
        i = data.draw(st.integers(0, len(proof) - 1), label="dropped")
        return proof[:i] + proof[i + 1 :]
    if how == "add":
        i = data.draw(st.integers(0, len(proof)), label="inserted at")
        extra = data.draw(
            st.one_of(st.binary(min_size=32, max_size=32), st.sampled_from([*proof, EMPTY_ROOT])), label="extra"
        )
        return [*proof[:i], extra, *proof[i:]]
    if how == "swap":
        assume(len(proof) >= 2)
        i = data.draw(st.integers(0, len(proof) - 2), label="swap a")
        j = data.draw(st.integers(i + 1, len(proof) - 1), label="swap b")
        assume(proof[i] != proof[j])
        mutated = list(proof)
        mutated[i], mutated[j] = mutated[j], mutated[i]
        return mutated
    if how == "truncate-hash":
        assume(proof)
        i = data.draw(st.integers(0, len(proof) - 1), label="shortened")
        mutated = list(proof)
        mutated[i] = mutated[i][:-1]
        return mutated
    raise AssertionError(how)


PROOF_MUTATIONS = ["flip", "drop", "add", "swap", "truncate-hash"]


@PROPERTY
@given(size_and_index(), st.sampled_from([*PROOF_MUTATIONS, "index", "size", "root", "leaf"]), st.data())
def test_mutated_inclusion_proof_fails(case: tuple[int, int], how: str, data: st.DataObject) -> None:
    size, index = case
    hashes = leaves()[:size]
    proof = inclusion_proof(index, size, Reader(size))
    root = ref_mth(hashes)
    leaf = hashes[index]
    if how == "index":
        assume(size > 1)
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="wrong index")
        with pytest.raises(ProofError):
            verify_inclusion(other, size, leaf, proof, root)
        # The out-of-range indices must be refused whatever the proof.
        with pytest.raises(ProofError):
            verify_inclusion(size, size, leaf, proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(-1, size, leaf, proof, root)
        return
    if how == "size":
        other = data.draw(st.integers(0, 2 * MAX_SIZE).filter(lambda n: n != size), label="wrong size")
        # A tree size with a different audit-path length (or not containing the
        # index) can never accept this proof.
        assume(other <= index or path_len(index, other) != len(proof))
        with pytest.raises(ProofError):
            verify_inclusion(index, other, leaf, proof, root)
        return
    if how == "root":
        wrong = data.draw(
            st.one_of(st.binary(min_size=32, max_size=32), st.sampled_from([EMPTY_ROOT, leaf, root[:31]])), label="root"
        )
        assume(wrong != root)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, proof, wrong)
        return
    if how == "leaf":
        other_leaf = data.draw(st.sampled_from(leaves()[:MAX_SIZE]).filter(lambda h: h != leaf), label="leaf")
        with pytest.raises(ProofError):
            verify_inclusion(index, size, other_leaf, proof, root)
        return
    mutated = _mutate(proof, how, data)
    assert mutated != proof
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf, mutated, root)


@PROPERTY
@given(old_and_new(), st.sampled_from([*PROOF_MUTATIONS, "old", "new", "old_root", "new_root"]), st.data())
def test_mutated_consistency_proof_fails(case: tuple[int, int], how: str, data: st.DataObject) -> None:
    old, new = case
    hashes = leaves()[:new]
    proof = consistency_proof(old, new, Reader(new))
    old_root, new_root = ref_mth(hashes[:old]), ref_mth(hashes)
    verify: Callable[..., None] = data.draw(st.sampled_from([verify_consistency, verify_append_only]), label="verifier")
    if how == "old":
        other = data.draw(st.integers(1, MAX_SIZE).filter(lambda m: m != old), label="wrong old size")
        assume(other > new or consistency_len(other, new) != len(proof))
        with pytest.raises(ProofError):
            verify(other, new, proof, old_root, new_root)
        return
    if how == "new":
        other = data.draw(st.integers(1, 2 * MAX_SIZE).filter(lambda n: n != new), label="wrong new size")
        assume(other < old or consistency_len(old, other) != len(proof))
        with pytest.raises(ProofError):
            verify(old, other, proof, old_root, new_root)
        return
    if how in ("old_root", "new_root"):
        right = old_root if how == "old_root" else new_root
        wrong = data.draw(
            st.one_of(st.binary(min_size=32, max_size=32), st.sampled_from([EMPTY_ROOT, old_root, new_root])),
            label=how,
        )
        assume(wrong != right)
        args = (old_root, wrong) if how == "new_root" else (wrong, new_root)
        with pytest.raises(ProofError):
            verify(old, new, proof, *args)
        return
    mutated = _mutate(proof, how, data)
    assert mutated != proof
    with pytest.raises(ProofError):
        verify(old, new, mutated, old_root, new_root)


# --- edge cases ---------------------------------------------------------------------------


def test_size_zero() -> None:
    reader = Reader(0)
    assert tree_hash(0, reader) == EMPTY_ROOT
    assert reader.calls == []
    with pytest.raises(ProofError):
        inclusion_proof(0, 0, reader)
    with pytest.raises(ProofError):
        verify_inclusion(0, 0, leaves()[0], [], EMPTY_ROOT)
    assert consistency_proof(0, 0, reader) == []
    assert reader.calls == []


@pytest.mark.parametrize("new", [1, 2, 3, 7, 8, 9, 255, 256, 257, 1000])
def test_consistency_from_zero(new: int) -> None:
    reader = Reader(new)
    assert consistency_proof(0, new, reader) == []
    assert reader.calls == []
    new_root = ref_mth(leaves()[:new])
    # RFC 9162 / Go CheckTree: a proof from the empty tree proves nothing.
    with pytest.raises(ProofError):
        verify_consistency(0, new, [], EMPTY_ROOT, new_root)
    # tlog-witness: every tree extends the empty tree.
    verify_append_only(0, new, [], EMPTY_ROOT, new_root)
    with pytest.raises(ProofError):
        verify_append_only(0, new, [new_root], EMPTY_ROOT, new_root)
    with pytest.raises(ProofError):
        verify_append_only(0, new, [], leaves()[0], new_root)


def test_append_only_empty_to_empty() -> None:
    verify_append_only(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError):
        verify_append_only(0, 0, [], EMPTY_ROOT, leaves()[0])
    with pytest.raises(ProofError):
        verify_append_only(0, 0, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)


@pytest.mark.parametrize("size", [1, 2, 5, 8, 100, 256])
def test_old_equals_new(size: int) -> None:
    reader = Reader(size)
    assert consistency_proof(size, size, reader) == []
    assert reader.calls == []
    root = ref_mth(leaves()[:size])
    verify_consistency(size, size, [], root, root)
    verify_append_only(size, size, [], root, root)
    other = ref_mth(leaves()[: size + 1])
    with pytest.raises(ProofError):
        verify_consistency(size, size, [], root, other)
    with pytest.raises(ProofError):
        verify_consistency(size, size, [root], root, root)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1023, 1024, 1025, MAX_SIZE])
def test_last_index(size: int) -> None:
    hashes = leaves()[:size]
    proof = inclusion_proof(size - 1, size, Reader(size))
    assert proof == ref_path(size - 1, hashes)
    verify_inclusion(size - 1, size, hashes[-1], proof, ref_mth(hashes))


@pytest.mark.parametrize(("old", "new"), [(2, 1), (5, 3), (1, 0)])
def test_old_larger_than_new_is_refused(old: int, new: int) -> None:
    with pytest.raises(ProofError):
        consistency_proof(old, new, Reader(max(old, new)))
    with pytest.raises(ProofError):
        verify_consistency(old, new, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError):
        verify_append_only(old, new, [], EMPTY_ROOT, EMPTY_ROOT)


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (6, 5)])
def test_inclusion_index_out_of_range(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        inclusion_proof(index, size, Reader(size))
    with pytest.raises(ProofError):
        root_from_inclusion_proof(index, size, leaves()[0], [])


def test_single_leaf_tree() -> None:
    leaf = leaves()[0]
    assert inclusion_proof(0, 1, Reader(1)) == []
    verify_inclusion(0, 1, leaf, [], leaf)
    with pytest.raises(ProofError):
        verify_inclusion(0, 1, leaf, [leaf], leaf)
