"""c2sp.org/tlog-tiles: paths, tile arithmetic, entry bundles and the tree's right edge."""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfc9162_reference import ref_consistency, ref_leaf, ref_mth, ref_path, root_from_table, subtree_table
from sealtrail.checkpoint import open_checkpoint
from sealtrail.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    tree_hash,
    verify_append_only,
    verify_consistency,
    verify_inclusion,
)
from sealtrail.note import parse_verifier
from sealtrail.tiles import (
    ENTRY_MAX,
    TILE_WIDTH,
    TileRef,
    TreeEdge,
    decode_bundle,
    encode_bundle,
    encode_index,
    entries_path,
    node_reader,
    parse_tile_path,
    tile_for_node,
    tile_path,
    tile_width,
    tiles_for_size,
)

ORIGIN = "example.com/log/testdata"


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "encoded"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1001, "x001/001"),
        (67000, "x067/000"),
        (1234067, "x001/x234/067"),
        (1000000, "x001/x000/000"),
        (999999999, "x999/x999/999"),
        (10**12, "x001/x000/x000/x000/000"),
    ],
)
def test_encode_index(index: int, encoded: str) -> None:
    assert encode_index(index) == encoded


@pytest.mark.parametrize(
    ("path", "ref"),
    [
        ("tile/0/x001/x234/067", TileRef(0, 1234067)),
        ("tile/1/000.p/17", TileRef(1, 0, 17)),
        ("tile/0/000.p/15", TileRef(0, 0, 15)),
        ("tile/2/000.p/1", TileRef(2, 0, 1)),
        ("tile/0/272", TileRef(0, 272)),
        ("tile/0/273.p/112", TileRef(0, 273, 112)),
        ("tile/63/000", TileRef(63, 0)),
        ("tile/0/000.p/255", TileRef(0, 0, 255)),
        ("tile/entries/000.p/15", TileRef(None, 0, 15)),
        ("tile/entries/x001/x234/067", TileRef(None, 1234067)),
        ("tile/entries/x001/000.p/1", TileRef(None, 1000, 1)),
    ],
)
def test_path_examples(path: str, ref: TileRef) -> None:
    assert parse_tile_path(path) == ref
    assert ref.path == path
    if ref.level is None:
        assert entries_path(ref.index, ref.width) == path
    else:
        assert tile_path(ref.level, ref.index, ref.width) == path
    assert ref.partial == (ref.width < 256)


def test_full_tile_has_no_suffix() -> None:
    assert tile_path(0, 0) == "tile/0/000"
    assert tile_path(0, 0, 256) == "tile/0/000"
    assert entries_path(5, 256) == "tile/entries/005"


@pytest.mark.parametrize("width", [0, -1, 257, 1000])
def test_bad_widths_rejected(width: int) -> None:
    with pytest.raises(ValueError):
        tile_path(0, 0, width)
    with pytest.raises(ValueError):
        entries_path(0, width)


@pytest.mark.parametrize("level", [-1, 64, 100])
def test_bad_levels_rejected(level: int) -> None:
    with pytest.raises(ValueError):
        tile_path(level, 0)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile/0",
        "tile/0/",
        "tile/0/0",
        "tile/0/00",
        "tile/0/0000",
        "tile/00/000",
        "tile/01/000",
        "tile/+1/000",
        "tile/64/000",
        "tile/99/000",
        "tile/100/000",
        "tile/-1/000",
        "tile/a/000",
        "tile/0/001/000",  # missing x
        "tile/0/x001",  # x on the last element
        "tile/0/x000/001",  # leading zero group
        "tile/0/x000/x001/000",
        "tile/0/x01/000",
        "tile/0/x0001/000",
        "tile/0/X001/000",
        "tile/0/000.p/0",
        "tile/0/000.p/00",
        "tile/0/000.p/017",
        "tile/0/000.p/256",
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000.P/17",
        "tile/0/000.p/17/",
        "tile/0/000/",
        "/tile/0/000",
        "tile//0/000",
        "tile/entry/000",
        "tile/entries/0",
        "tile/entries/000.p/256",
        "tile/entries/000.p/0",
        "tile/0/-01",
        "tile/0/1e3",
        "tile/0/000\n",
        "tile/0/\u0661\u0662\u0663",  # ARABIC-INDIC digits
        "tile/\u0660/000",
        "checkpoint",
    ],
)
def test_non_canonical_paths_rejected(path: str) -> None:
    with pytest.raises(ValueError):
        parse_tile_path(path)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.integers(0, 63)), st.integers(0, 10**15), st.integers(1, 256))
def test_path_round_trip(level: int | None, index: int, width: int) -> None:
    ref = TileRef(level, index, width)
    path = ref.path
    assert parse_tile_path(path) == ref
    # Independent spelling of the index per the spec.
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    expected_index = "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])
    suffix = "" if width == 256 else f".p/{width}"
    prefix = "tile/entries" if level is None else f"tile/{level}"
    assert path == f"{prefix}/{expected_index}{suffix}"


# --- tile arithmetic --------------------------------------------------------------------------


def test_tiles_for_70000_match_the_spec() -> None:
    tiles = list(tiles_for_size(70000))
    level0 = [t for t in tiles if t.level == 0]
    assert [t for t in level0 if not t.partial] == [TileRef(0, i) for i in range(273)]
    assert [t for t in level0 if t.partial] == [TileRef(0, 273, 112)]
    assert [t for t in tiles if t.level == 1] == [TileRef(1, 0), TileRef(1, 1, 17)]
    assert [t for t in tiles if t.level == 2] == [TileRef(2, 0, 1)]
    assert len(tiles) == 273 + 1 + 1 + 1 + 1


def test_tiles_for_256_match_the_spec() -> None:
    assert list(tiles_for_size(256)) == [TileRef(0, 0), TileRef(1, 0, 1)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, []),
        (1, [TileRef(0, 0, 1)]),
        (15, [TileRef(0, 0, 15)]),
        (255, [TileRef(0, 0, 255)]),
        (257, [TileRef(0, 0), TileRef(0, 1, 1), TileRef(1, 0, 1)]),
        (512, [TileRef(0, 0), TileRef(0, 1), TileRef(1, 0, 2)]),
        (65536, [*(TileRef(0, i) for i in range(256)), TileRef(1, 0), TileRef(2, 0, 1)]),
    ],
)
def test_tiles_for_small_sizes(size: int, expected: list[TileRef]) -> None:
    assert list(tiles_for_size(size)) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**40))
def test_tile_widths_follow_the_partial_tile_formula(size: int) -> None:
    """The partial tile at level l has floor(size / 256**l) mod 256 hashes."""
    level = 0
    while size // 256**level:
        hashes = size // 256**level
        assert tile_width(level, hashes // 256, size) == hashes % 256
        if hashes >= 256:
            assert tile_width(level, hashes // 256 - 1, size) == 256
            assert tile_width(level, 0, size) == 256
        assert tile_width(level, hashes // 256 + 1, size) == 0
        level += 1
    assert tile_width(level, 0, size) == 0


def test_edge_refs() -> None:
    assert TreeEdge.edge_refs(0) == []
    assert TreeEdge.edge_refs(70000) == [TileRef(0, 273, 112), TileRef(1, 1, 17), TileRef(2, 0, 1)]
    assert TreeEdge.edge_refs(256) == [TileRef(0, 1, 0), TileRef(1, 0, 1)]


@pytest.mark.parametrize(
    ("node", "size", "expected"),
    [
        ((0, 0), 1, (TileRef(0, 0, 1), 0, 1)),
        ((0, 300), 1000, (TileRef(0, 1), 44, 45)),
        ((3, 1), 16, (TileRef(0, 0, 16), 8, 16)),
        ((8, 0), 256, (TileRef(1, 0, 1), 0, 1)),
        ((9, 1), 1024, (TileRef(1, 0, 4), 2, 4)),
        ((16, 0), 70000, (TileRef(2, 0, 1), 0, 1)),
    ],
)
def test_tile_for_node(node: tuple[int, int], size: int, expected: tuple[TileRef, int, int]) -> None:
    assert tile_for_node(node, size) == expected


@pytest.mark.parametrize(("node", "size"), [((0, 1), 1), ((1, 0), 1), ((8, 0), 255), ((3, 1), 15)])
def test_tile_for_incomplete_node_rejected(node: tuple[int, int], size: int) -> None:
    with pytest.raises(ValueError):
        tile_for_node(node, size)


# --- entry bundles ---------------------------------------------------------------------------------


def test_bundle_format() -> None:
    entries = [b"", b"a", b"hello", b"x" * 300]
    data = encode_bundle(entries)
    assert data == b"".join(struct.pack(">H", len(e)) + e for e in entries)
    assert decode_bundle(data, 4) == entries


def test_bundle_entry_size_limit() -> None:
    assert ENTRY_MAX == 65535
    big = b"\xab" * 65535
    data = encode_bundle([big])
    assert data[:2] == b"\xff\xff"
    assert decode_bundle(data, 1) == [big]
    with pytest.raises(ValueError):
        encode_bundle([b"\x00" * 65536])


@pytest.mark.parametrize("count", [0, 1, 2, 255, 256])
def test_bundle_round_trip(count: int) -> None:
    rng = random.Random(count)
    entries = [rng.randbytes(rng.randrange(0, 80)) for _ in range(count)]
    assert decode_bundle(encode_bundle(entries), count) == entries


def test_bundle_rejects_truncation_extra_bytes_and_wrong_width() -> None:
    entries = [b"one", b"two", b"three"]
    data = encode_bundle(entries)
    for cut in range(1, len(data)):
        with pytest.raises(ValueError):
            decode_bundle(data[:-cut], 3)
    for extra in (b"\x00", b"\x00\x01", b"\x00\x00", b"\x00\x05abc"):
        with pytest.raises(ValueError):
            decode_bundle(data + extra, 3)
    for width in (0, 2, 4, 256):
        with pytest.raises(ValueError):
            decode_bundle(data, width)


# --- the Tessera golden log -------------------------------------------------------------------------


def tessera_root(vectors: Path, size: int) -> bytes:
    verifier = parse_verifier((vectors / "tessera-log" / "log.vkey").read_text())
    raw = (vectors / "tessera-log" / f"checkpoint.{size}").read_bytes()
    return open_checkpoint(raw, ORIGIN, [verifier]).checkpoint.root


def tessera_tiles(vectors: Path) -> tuple[list[bytes], bytes]:
    entries = decode_bundle((vectors / "tessera-log" / "tile" / "entries" / "000.p" / "15").read_bytes(), 15)
    tile = (vectors / "tessera-log" / "tile" / "0" / "000.p" / "15").read_bytes()
    return entries, tile


def test_tessera_paths_parse() -> None:
    assert parse_tile_path("tile/0/000.p/15") == TileRef(0, 0, 15)
    assert parse_tile_path("tile/entries/000.p/15") == TileRef(None, 0, 15)


def test_tessera_bundle_and_tile_hash_into_the_checkpoints(vectors: Path) -> None:
    entries, tile = tessera_tiles(vectors)
    assert len(tile) == 15 * 32
    hashes = [tile[i * 32 : (i + 1) * 32] for i in range(15)]
    assert [hashlib.sha256(b"\x00" + e).digest() for e in entries] == hashes
    assert encode_bundle(entries) == (vectors / "tessera-log" / "tile" / "entries" / "000.p" / "15").read_bytes()
    assert ref_mth(hashes) == tessera_root(vectors, 15)
    assert ref_mth(hashes[:7]) == tessera_root(vectors, 7)
    assert tessera_root(vectors, 0) == EMPTY_ROOT

    def read_tiles(refs: Sequence[TileRef]) -> list[bytes]:
        # A client at size 7 may only fetch tile/0/000.p/7: the first 7 hashes of the tile.
        out = []
        for ref in refs:
            assert ref.level == 0
            assert ref.index == 0
            out.append(tile[: ref.width * 32])
        return out

    for size in (7, 15):
        root = tessera_root(vectors, size)
        reader = node_reader(read_tiles, size)
        assert tree_hash(size, reader) == root
        for index in range(size):
            proof = inclusion_proof(index, size, reader)
            assert proof == ref_path(index, hashes[:size])
            verify_inclusion(index, size, hashes[index], proof, root)
    proof = consistency_proof(7, 15, node_reader(read_tiles, 15))
    assert proof == ref_consistency(7, hashes)
    verify_consistency(7, 15, proof, tessera_root(vectors, 7), tessera_root(vectors, 15))
    verify_append_only(0, 7, [], tessera_root(vectors, 0), tessera_root(vectors, 7))


def test_tessera_tree_edge(vectors: Path) -> None:
    entries, tile = tessera_tiles(vectors)
    hashes = [ref_leaf(e) for e in entries]
    edge = TreeEdge()
    assert edge.root() == EMPTY_ROOT
    assert edge.append(hashes[:7]) == {(0, 0): tile[: 7 * 32]}
    assert edge.root() == tessera_root(vectors, 7)
    assert edge.append(hashes[7:]) == {(0, 0): tile}
    assert edge.root() == tessera_root(vectors, 15)
    assert edge.size == 15
    # Restarted from the stored edge tile.
    again = TreeEdge(7, [tile[: 7 * 32]])
    again.append(hashes[7:])
    assert again.root() == tessera_root(vectors, 15)


# --- TreeEdge against the reference -------------------------------------------------------------------


@cache
def leaves(n: int = 80000) -> list[bytes]:
    return [ref_leaf(b"leaf %d" % i) for i in range(n)]


@cache
def table() -> list[list[bytes]]:
    return subtree_table(leaves())


def expected_tile(ref: TileRef) -> bytes:
    """Tile (L, N) per the spec: MTH(D[(N*256+i) * 256**L : (N*256+i+1) * 256**L]), from the reference."""
    assert ref.level is not None
    level = table()[8 * ref.level]
    start = ref.index * TILE_WIDTH
    return b"".join(level[start : start + ref.width])


class TileStore:
    """What a tile writer persists: the latest contents of each (level, index)."""

    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}
        self.fetched: list[TileRef] = []

    def read(self, refs: Sequence[TileRef]) -> list[bytes]:
        out = []
        for ref in refs:
            assert ref.level is not None
            self.fetched.append(ref)
            data = self.tiles[(ref.level, ref.index)]
            # A width-W tile is the first W hashes of what was stored at that position.
            assert len(data) >= ref.width * 32
            out.append(data[: ref.width * 32])
        return out


def check_tiles(store: TileStore, size: int) -> None:
    for ref in tiles_for_size(size):
        assert ref.level is not None
        data = store.tiles[(ref.level, ref.index)]
        assert len(data) == ref.width * 32, ref
        assert data == expected_tile(ref), ref


def table_root(size: int) -> bytes:
    return root_from_table(table(), size)


def test_table_root_agrees_with_recursive_reference() -> None:
    for size in (*range(0, 70), 255, 256, 257, 1000, 4097):
        assert table_root(size) == ref_mth(leaves()[:size])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 600), min_size=1, max_size=10), st.data())
def test_tree_edge_matches_reference(batches: list[int], data: st.DataObject) -> None:
    edge = TreeEdge()
    store = TileStore()
    size = 0
    previous: list[tuple[int, bytes]] = [(0, EMPTY_ROOT)]
    for batch in batches:
        changed = edge.append(leaves()[size : size + batch])
        for (level, index), tile in changed.items():
            assert tile, "an emitted tile is never empty"
            store.tiles[(level, index)] = tile
        unchanged = {k: v for k, v in store.tiles.items() if k not in changed}
        size += batch
        assert edge.size == size
        root = table_root(size)
        assert edge.root() == root
        check_tiles(store, size)
        # Tiles not reported as changed really did not change.
        for key, value in unchanged.items():
            assert expected_tile(TileRef(key[0], key[1], len(value) // 32)) == value
        if size:
            reader = node_reader(store.read, size)
            assert tree_hash(size, reader) == root
            index = data.draw(st.integers(0, size - 1), label="index")
            proof = inclusion_proof(index, size, reader)
            verify_inclusion(index, size, leaves()[index], proof, root)
            old, old_root = data.draw(st.sampled_from(previous), label="old checkpoint")
            proof = consistency_proof(old, size, reader)
            verify_append_only(old, size, proof, old_root, root)
            previous.append((size, root))

    if size:
        # Byte for byte against RFC 9162 at the final size.
        reader = node_reader(store.read, size)
        index = data.draw(st.integers(0, size - 1), label="final index")
        assert inclusion_proof(index, size, reader) == ref_path(index, leaves()[:size])
        old = data.draw(st.integers(1, size), label="final old size")
        assert consistency_proof(old, size, reader) == ref_consistency(old, leaves()[:size])

    # The edge tiles alone are enough to carry on appending.
    refs = TreeEdge.edge_refs(size)
    resumed = TreeEdge(size, [store.tiles.get((r.level or 0, r.index), b"")[: r.width * 32] for r in refs])
    assert resumed.root() == edge.root()
    extra = leaves()[size : size + 300]
    clone = edge.copy()
    edge.append(extra)
    resumed.append(extra)
    assert resumed.root() == edge.root() == table_root(size + 300)
    assert clone.size == size
    assert clone.root() == table_root(size)


def test_tree_edge_across_three_levels() -> None:
    """70,000 leaves in random batches: the spec's example size, with a level-2 tile."""
    rng = random.Random(70000)
    edge = TreeEdge()
    store = TileStore()
    size = 0
    checkpoints: list[tuple[int, bytes]] = []
    while size < 70000:
        batch = min(rng.choice([1, 3, 255, 256, 257, 1000, 4096]), 70000 - size)
        for key, tile in edge.append(leaves()[size : size + batch]).items():
            store.tiles[key] = tile
        size += batch
        if rng.random() < 0.05 or size == 70000:
            checkpoints.append((size, edge.root()))
    assert size == 70000
    check_tiles(store, size)
    assert edge.levels == 3
    assert edge.root() == ref_mth(leaves()[:size])
    for old, old_root in checkpoints:
        assert old_root == table_root(old)
    reader = node_reader(store.read, size)
    root = edge.root()
    for index in (0, 255, 256, 65535, 65536, 69887, 69888, 69999, rng.randrange(size)):
        store.fetched.clear()
        proof = inclusion_proof(index, size, reader)
        assert proof == ref_path(index, leaves()[:size])
        verify_inclusion(index, size, leaves()[index], proof, root)
        # One fetch per tile at most.
        assert len(store.fetched) == len(set(store.fetched))
    for old, old_root in checkpoints[:-1]:
        proof = consistency_proof(old, size, reader)
        verify_consistency(old, size, proof, old_root, root)


def test_tree_edge_full_tile_emitted_once_complete() -> None:
    edge = TreeEdge()
    changed = edge.append(leaves()[:256])
    assert changed[(0, 0)] == b"".join(leaves()[:256])
    assert changed[(1, 0)] == ref_mth(leaves()[:256])
    assert set(changed) == {(0, 0), (1, 0)}
    changed = edge.append(leaves()[256:257])
    assert set(changed) == {(0, 1)}
    assert changed[(0, 1)] == leaves()[256]


def test_tree_edge_rejects_wrong_edge_tiles() -> None:
    with pytest.raises(ValueError):
        TreeEdge(7, [b"\x00" * 32 * 6])
    with pytest.raises(ValueError):
        TreeEdge(300, [b"\x00" * 32 * 44])  # level-1 edge tile missing
