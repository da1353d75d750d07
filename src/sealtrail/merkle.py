"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs.

Pure functions, no I/O. A *node* ``(level, index)`` names the complete subtree
``D[index * 2**level : (index + 1) * 2**level]``; proof generation asks a
reader for the hashes of such nodes, so any storage that can produce them
(tiles, an in-memory list, a database) can generate RFC 9162 proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Node",
    "NodeReader",
    "ProofError",
    "combine_subtrees",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_hash",
    "tree_hash",
    "verify_append_only",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) — the root of the empty tree (RFC 6962 §2.1)."""

Node = tuple[int, int]
"""(level, index): the complete subtree of 2**level leaves starting at index * 2**level."""

NodeReader = Callable[[Sequence[Node]], Sequence[bytes]]
"""Returns the hash of each requested node, in order."""

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof or its inputs are invalid; the message says which check failed."""


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (RFC 6962 §2.1), bottom-up in O(n)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        level = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if odd is not None:
            level.append(odd)
    return level[0]


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_nodes(lo: int, hi: int) -> list[Node]:
    """The complete subtrees that MTH(D[lo:hi]) combines, left to right.

    Valid for the ranges RFC 9162 proofs use, where lo is a multiple of the
    largest power of two not exceeding hi - lo.
    """
    nodes: list[Node] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def combine_subtrees(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its complete subtrees' hashes, largest (leftmost) first."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(b"\x01" + h + acc).digest()
    return acc


def _resolve(ranges: list[tuple[int, int]], read: NodeReader) -> list[bytes]:
    """Hashes of the given ranges, reading every node with one reader call."""
    per_range = [_range_nodes(lo, hi) for lo, hi in ranges]
    flat = [node for nodes in per_range for node in nodes]
    hashes = list(read(flat)) if flat else []
    if len(hashes) != len(flat):
        raise ProofError(f"node reader returned {len(hashes)} hashes for {len(flat)} nodes")
    out: list[bytes] = []
    pos = 0
    for nodes in per_range:
        out.append(combine_subtrees(hashes[pos : pos + len(nodes)]))
        pos += len(nodes)
    return out


def tree_hash(size: int, read: NodeReader) -> bytes:
    """MTH(D[0:size]) from at most log2(size) complete-subtree hashes."""
    if size < 0:
        raise ProofError(f"negative tree size {size}")
    if size == 0:
        return EMPTY_ROOT
    return _resolve([(0, size)], read)[0]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1 as ranges, leaf side first."""
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            m -= k
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """The audit path for leaf `index` in the tree of `size` (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    return _resolve(_inclusion_ranges(index, size), read)


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1 as ranges, in proof order."""
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def consistency_proof(old: int, new: int, read: NodeReader) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 9162 §2.1.4.1.

    Empty when old == new, and when old == 0 (tlog-witness sends an empty proof
    from an empty tree).
    """
    if not 0 <= old <= new:
        raise ProofError(f"cannot prove consistency from size {old} to size {new}")
    if old == 0 or old == new:
        return []
    return _resolve(_consistency_ranges(old, new), read)


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, want {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an audit path (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf)
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        raise ProofError(f"proof has {len(proof)} hashes, want {inner + border}")
    for i, h in enumerate(proof):
        _check_hash(f"proof hash {i}", h)
    acc = leaf
    for i in range(inner):
        acc = node_hash(proof[i], acc) if (index >> i) & 1 else node_hash(acc, proof[i])
    for h in proof[inner:]:
        acc = node_hash(h, acc)
    return acc


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf `index` is in the tree with `root`."""
    calculated = root_from_inclusion_proof(index, size, leaf, proof)
    if calculated != root:
        raise ProofError(f"inclusion proof for index {index} gives a different root for size {size}")


def verify_consistency(old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    """Raise ProofError unless `proof` shows tree `old` is a prefix of tree `new`.

    RFC 9162 §2.1.4.2; requires 0 < old <= new, as RFC 9162 and Go's
    sumdb/tlog.CheckTree do (a proof from the empty tree proves nothing; see
    verify_append_only for the tlog-witness convention).
    """
    if new < old:
        raise ProofError(f"new size {new} is smaller than old size {old}")
    if old == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if old == new:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old}")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    for i, h in enumerate(proof):
        _check_hash(f"proof hash {i}", h)
    _check_hash("old root", old_root)

    inner = ((old - 1) ^ (new - 1)).bit_length()
    border = bin((old - 1) >> inner).count("1")
    shift = (old & -old).bit_length() - 1
    inner -= shift
    if old == 1 << shift:
        seed, rest = old_root, list(proof)
    else:
        seed, rest = proof[0], list(proof[1:])
    want = len(proof) - len(rest) + inner + border  # the seed, when it is not old_root, comes first
    if len(rest) != inner + border:
        raise ProofError(f"proof has {len(proof)} hashes, want {want}")

    mask = (old - 1) >> shift
    h1 = seed
    h2 = seed
    for i in range(inner):
        if (mask >> i) & 1:
            h1 = node_hash(rest[i], h1)
            h2 = node_hash(rest[i], h2)
        else:
            h2 = node_hash(h2, rest[i])
    for h in rest[inner:]:
        h1 = node_hash(h, h1)
        h2 = node_hash(h, h2)
    if h1 != old_root:
        raise ProofError(f"consistency proof does not match the root of size {old}")
    if h2 != new_root:
        raise ProofError(f"consistency proof does not match the root of size {new}")


def verify_append_only(old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    """verify_consistency, extended to old == 0 as c2sp.org/tlog-witness does.

    Every tree extends the empty tree, so from size 0 the proof must be empty
    and only the old root is checked (it must be the empty root).
    """
    if old == 0:
        if proof:
            raise ProofError("a consistency proof from size 0 must be empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("the root of an empty tree must be SHA-256 of nothing")
        if new == 0 and new_root != EMPTY_ROOT:
            raise ProofError("the root of an empty tree must be SHA-256 of nothing")
        return
    verify_consistency(old, new, proof, old_root, new_root)
