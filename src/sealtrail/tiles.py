"""c2sp.org/tlog-tiles: tile paths, tile arithmetic, entry bundles, and the tree's right edge.

Pure: no I/O. A tile (level L, index N) holds up to 256 consecutive hashes of
tree level 8L; the hash at position i is MTH(D[(N*256+i) * 256**L : (N*256+i+1) * 256**L]).
A tile is *full* at 256 hashes; the rightmost tile of each level is partial,
with floor(size / 256**L) mod 256 hashes, and is never hashed into the level above.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from .merkle import EMPTY_ROOT, HASH_SIZE, Node, NodeReader, combine_subtrees, root_hash

__all__ = [
    "ENTRY_MAX",
    "REDACTED_PREFIX",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileRef",
    "TreeEdge",
    "decode_bundle",
    "encode_bundle",
    "entries_path",
    "node_from_tile",
    "node_reader",
    "parse_tile_path",
    "redacted_bundle_path",
    "tile_for_node",
    "tile_inner",
    "tile_path",
    "tile_width",
    "tiles_for_size",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
TILE_BYTES = TILE_WIDTH * HASH_SIZE
ENTRY_MAX = 0xFFFF
"""Entry bundles length-prefix each entry with a big-endian uint16."""

_sha256 = hashlib.sha256
_PATH = re.compile(r"tile/(?:(entries)|(0|[1-9][0-9]?))/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


@dataclass(frozen=True, order=True)
class TileRef:
    """A tile of hashes at `level` (or an entry bundle when level is None), `width` entries wide."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def path(self) -> str:
        if self.level is None:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH


def encode_index(index: int) -> str:
    """N as zero-padded 3-digit path elements, all but the last prefixed with x."""
    if index < 0:
        raise ValueError(f"negative tile index {index}")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def _suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is not in 1..256")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """`tile/<L>/<N>[.p/<W>]`."""
    if not 0 <= level <= 63:
        raise ValueError(f"tile level {level} is not in 0..63")
    return f"tile/{level}/{encode_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """`tile/entries/<N>[.p/<W>]`."""
    return f"tile/entries/{encode_index(index)}{_suffix(width)}"


REDACTED_PREFIX = "redacted/"


def redacted_bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """`redacted/tile/entries/<N>[.p/<W>]`: sealtrail's stand-in for an entry bundle that spans redacted entries.

    Not part of c2sp.org/tlog-tiles, which has no redaction. Once a logged redaction removed an
    entry's body, the signed bundle cannot be served; this object is that bundle with every
    redacted entry zero-length (no entry of a sealtrail log is empty). The redacted entries' leaf
    hashes stay in the level-0 hash tile, and a redaction, retention or erasure record later in the
    log lists their indices (docs/retention.md).
    """
    return REDACTED_PREFIX + entries_path(index, width)


def parse_tile_path(path: str) -> TileRef:
    """Parse a tile or entry-bundle path, rejecting every non-canonical spelling."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise ValueError(f"not a tile path: {path!r}")
    entries, level, index_text, width_text = match.groups()
    index = int(index_text.replace("x", "").replace("/", ""))
    width = int(width_text) if width_text else TILE_WIDTH
    if width > 255 and width_text:
        raise ValueError(f"partial tile width {width} is not in 1..255")
    ref = TileRef(None if entries else int(level), index, width)
    if ref.path != path:
        raise ValueError(f"non-canonical tile path: {path!r}")
    return ref


def tile_width(level: int, index: int, size: int) -> int:
    """Width of tile (level, index) in the tree of `size`; 0 if it has no hashes yet."""
    hashes = size >> (TILE_HEIGHT * level)
    full = hashes >> TILE_HEIGHT
    if index < full:
        return TILE_WIDTH
    if index == full:
        return hashes & (TILE_WIDTH - 1)
    return 0


def tiles_for_size(size: int) -> Iterator[TileRef]:
    """Every hash tile of the tree of `size`, level by level, in index order."""
    level = 0
    while size >> (TILE_HEIGHT * level):
        hashes = size >> (TILE_HEIGHT * level)
        for index in range(hashes >> TILE_HEIGHT):
            yield TileRef(level, index)
        if hashes & (TILE_WIDTH - 1):
            yield TileRef(level, hashes >> TILE_HEIGHT, hashes & (TILE_WIDTH - 1))
        level += 1


def tile_for_node(node: Node, size: int) -> tuple[TileRef, int, int]:
    """The tile holding the level-8L descendants of `node`, and their [start, end) in it.

    The width is that of the tile in the tree of `size`, so the reference names
    exactly the resource a client of that checkpoint may fetch.
    """
    level, index = node
    tile_level, rise = divmod(level, TILE_HEIGHT)
    first = index << rise
    tile_index, start = divmod(first, TILE_WIDTH)
    end = start + (1 << rise)
    width = tile_width(tile_level, tile_index, size)
    if width < end:
        raise ValueError(f"node {node} is not complete in a tree of size {size}")
    return TileRef(tile_level, tile_index, width), start, end


def node_from_tile(tile: bytes, start: int, end: int) -> bytes:
    """MTH of the perfect subtree whose level-8L hashes are tile[start:end]."""
    hashes = [tile[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(start, end)]
    if len(hashes[-1]) != HASH_SIZE:
        raise ValueError("tile is shorter than its width")
    return root_hash(hashes)


INNER_HASHES = TILE_WIDTH - 2
"""Hashes of tree levels 8L+1 .. 8L+7 inside a full tile: 128 + 64 + ... + 2."""


def tile_inner(hashes: Sequence[bytes]) -> tuple[bytes, bytes]:
    """For a full tile: its inner levels, concatenated level by level, and its root.

    The inner levels are derived data that sealtrail stores beside each full
    tile so that a proof reads a node instead of rehashing up to 128 hashes.
    """
    if len(hashes) != TILE_WIDTH:
        raise ValueError("only a full tile has inner levels")
    level = list(hashes)
    inner: list[bytes] = []
    while len(level) > 1:
        level = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        inner.extend(level)
    root = inner.pop()
    return b"".join(inner), root


def _inner_offset(rise: int, index: int) -> int:
    """Position in tile_inner() of the node `index` of inner level `rise` (1..7)."""
    return TILE_WIDTH - (1 << (TILE_HEIGHT + 1 - rise)) + (index & ((TILE_WIDTH >> rise) - 1))


TileReader = Callable[[Sequence[TileRef]], Sequence[bytes]]
InnerReader = Callable[[Sequence[TileRef]], Sequence[bytes | None]]


def node_reader(read_tiles: TileReader, size: int, read_inner: InnerReader | None = None) -> NodeReader:
    """A merkle.NodeReader over tiles: one read per tile needed.

    With `read_inner` (stored tile_inner data of full tiles), a node inside a
    full tile is read, not recomputed; tiles without inner data are rehashed.
    """

    def read(nodes: Sequence[Node]) -> list[bytes]:
        located = [(node, *tile_for_node(node, size)) for node in nodes]
        inner_wanted = sorted(
            {ref for (level, _), ref, _, _ in located if level % TILE_HEIGHT and not ref.partial}
            if read_inner is not None
            else set()
        )
        inner = dict(zip(inner_wanted, read_inner(inner_wanted), strict=True)) if read_inner and inner_wanted else {}
        tiles_wanted = sorted(
            {ref for (level, _), ref, _, _ in located if not (level % TILE_HEIGHT and inner.get(ref))}
        )
        tiles = dict(zip(tiles_wanted, read_tiles(tiles_wanted), strict=True)) if tiles_wanted else {}
        out = []
        for (level, index), ref, start, end in located:
            rise = level % TILE_HEIGHT
            stored = inner.get(ref) if rise else None
            if stored:
                offset = _inner_offset(rise, index) * HASH_SIZE
                out.append(stored[offset : offset + HASH_SIZE])
                continue
            tile = tiles[ref]
            if len(tile) < end * HASH_SIZE:
                raise ValueError(f"{ref.path} is {len(tile)} bytes, need {end * HASH_SIZE}")
            out.append(node_from_tile(tile, start, end))
        return out

    return read


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """Concatenate entries, each prefixed with its big-endian uint16 length."""
    parts = []
    for entry in entries:
        if len(entry) > ENTRY_MAX:
            raise ValueError(f"entry of {len(entry)} bytes exceeds {ENTRY_MAX}")
        parts.append(struct.pack(">H", len(entry)))
        parts.append(entry)
    return b"".join(parts)


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    """Split an entry bundle that must hold exactly `width` entries and nothing else."""
    entries = []
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("entry bundle ends inside a length prefix")
        length = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if pos + length > len(data):
            raise ValueError("entry bundle ends inside an entry")
        entries.append(bytes(view[pos : pos + length]))
        pos += length
    if len(entries) != width:
        raise ValueError(f"entry bundle holds {len(entries)} entries, want {width}")
    return entries


class TreeEdge:
    """The right edge of a tiled tree: the rightmost (partial) tile of every level.

    This is all the state needed to append leaves and compute the root. It is
    O(256 * levels) hashes, whatever the tree size.
    """

    __slots__ = ("_edge", "size")

    def __init__(self, size: int = 0, edge_tiles: Sequence[bytes] = ()) -> None:
        self.size = size
        self._edge: list[list[bytes]] = []
        for level, data in enumerate(edge_tiles):
            want = (size >> (TILE_HEIGHT * level)) & (TILE_WIDTH - 1)
            if len(data) != want * HASH_SIZE:
                raise ValueError(f"edge tile at level {level} has {len(data)} bytes, want {want * HASH_SIZE}")
            self._edge.append([data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)])
        needed = 0
        while size >> (TILE_HEIGHT * needed):
            needed += 1
        while len(self._edge) < needed:
            if (size >> (TILE_HEIGHT * len(self._edge))) & (TILE_WIDTH - 1):
                raise ValueError(f"missing edge tile at level {len(self._edge)}")
            self._edge.append([])

    def copy(self) -> TreeEdge:
        clone = TreeEdge.__new__(TreeEdge)
        clone.size = self.size
        clone._edge = [list(level) for level in self._edge]
        return clone

    @staticmethod
    def edge_refs(size: int) -> list[TileRef]:
        """The edge tile of every level of a tree of `size` (width 0 when empty)."""
        refs = []
        level = 0
        while size >> (TILE_HEIGHT * level):
            hashes = size >> (TILE_HEIGHT * level)
            refs.append(TileRef(level, hashes >> TILE_HEIGHT, hashes & (TILE_WIDTH - 1)))
            level += 1
        return refs

    def append(self, leaf_hashes: Sequence[bytes]) -> dict[tuple[int, int], bytes]:
        """Integrate leaf hashes; return every tile that changed, keyed by (level, index).

        A tile that became full appears with its 8192 final bytes; the edge tile
        of each touched level appears with its current partial contents.
        """
        return self.append_tiles(leaf_hashes)[0]

    def append_tiles(
        self, hashes: Sequence[bytes], level: int = 0
    ) -> tuple[dict[tuple[int, int], bytes], dict[tuple[int, int], bytes]]:
        """append(), also returning the inner levels (see tile_inner) of every tile that became full.

        With level > 0, `hashes` are roots of whole tiles of the level below
        (each standing for 256**level leaves); the edge below `level` must be empty.
        """
        changed: dict[tuple[int, int], bytes] = {}
        inner: dict[tuple[int, int], bytes] = {}
        span = 1 << (TILE_HEIGHT * level)
        if self.size % span:
            raise ValueError(f"cannot append whole level-{level} subtrees to a tree of size {self.size}")
        if not hashes:
            return changed, inner
        pending: list[bytes] = list(hashes)
        size_at_level = self.size >> (TILE_HEIGHT * level)
        while len(self._edge) < level:
            self._edge.append([])
        while pending:
            if level == len(self._edge):
                self._edge.append([])
            edge = self._edge[level]
            index = size_at_level >> TILE_HEIGHT
            completed: list[bytes] = []
            for h in pending:
                edge.append(h)
                if len(edge) == TILE_WIDTH:
                    changed[(level, index)] = b"".join(edge)
                    inner[(level, index)], root = tile_inner(edge)
                    completed.append(root)
                    edge.clear()
                    index += 1
            if edge:
                changed[(level, index)] = b"".join(edge)
            size_at_level >>= TILE_HEIGHT
            pending = completed
            level += 1
        self.size += len(hashes) * span
        return changed, inner

    def tile(self, level: int) -> bytes:
        """Current contents of the edge tile at `level`."""
        return b"".join(self._edge[level]) if level < len(self._edge) else b""

    @property
    def levels(self) -> int:
        return len(self._edge)

    def root(self) -> bytes:
        """MTH of the whole tree: perfect groups of each edge tile, folded right to left."""
        groups: list[bytes] = []
        for level in range(len(self._edge) - 1, -1, -1):
            hashes = self._edge[level]
            pos = 0
            width = len(hashes)
            for bit in range(TILE_HEIGHT - 1, -1, -1):
                if width & (1 << bit):
                    groups.append(root_hash(hashes[pos : pos + (1 << bit)]))
                    pos += 1 << bit
        return combine_subtrees(groups) if groups else EMPTY_ROOT
