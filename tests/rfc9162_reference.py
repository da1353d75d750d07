"""An independent RFC 9162 §2.1 reference for tests: recursive, hashlib only.

Deliberately naive and written from the RFC text, so sealtrail's merkle and
tiles code is compared against something that shares none of its shortcuts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "consistency_len",
    "path_len",
    "ref_consistency",
    "ref_leaf",
    "ref_mth",
    "ref_node",
    "ref_path",
    "root_from_table",
    "split_point",
    "subtree_table",
]


def ref_leaf(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf hashes."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = split_point(n)
    return ref_node(ref_mth(hashes[:k]), ref_mth(hashes[k:]))


def ref_path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the inclusion proof of leaf m, leaf side first."""
    n = len(hashes)
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return [*ref_path(m, hashes[:k]), ref_mth(hashes[k:])]
    return [*ref_path(m - k, hashes[k:]), ref_mth(hashes[:k])]


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [ref_mth(hashes)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete), ref_mth(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), ref_mth(hashes[:k])]


def ref_consistency(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m <= n."""
    return _subproof(m, hashes, True)


def path_len(m: int, n: int) -> int:
    """len(PATH(m, D[n])) without hashing."""
    if n == 1:
        return 0
    k = split_point(n)
    return 1 + (path_len(m, k) if m < k else path_len(m - k, n - k))


def consistency_len(m: int, n: int, complete: bool = True) -> int:
    """len(PROOF(m, D[n])) without hashing."""
    if m == n:
        return 0 if complete else 1
    k = split_point(n)
    return 1 + (consistency_len(m, k, complete) if m <= k else consistency_len(m - k, n - k, False))


def subtree_table(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """table[l][i] = MTH of the complete subtree D[i * 2**l : (i + 1) * 2**l]."""
    table = [list(leaf_hashes)]
    while len(table[-1]) > 1:
        prev = table[-1]
        table.append([ref_node(prev[2 * i], prev[2 * i + 1]) for i in range(len(prev) // 2)])
    return table


def root_from_table(table: Sequence[Sequence[bytes]], size: int) -> bytes:
    """MTH(D[0:size]) from a subtree_table: split into complete subtrees, largest first, fold right to left."""
    if size == 0:
        return hashlib.sha256(b"").digest()
    parts = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            parts.append(table[level][start >> level])
            start += 1 << level
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = ref_node(part, acc)
    return acc
