"""Publishing a log as c2sp.org/tlog-tiles to a sink, incrementally (sealtrail.publish).

Runs against DirectorySink; tests/test_s3.py runs the same publisher against S3.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _support import ORIGIN, devsecops_events, rfc6962_leaf, rfc6962_root, stored_entries
from sealtrail.cosignature import CosignatureSigner
from sealtrail.datadir import DataDir
from sealtrail.fetch import DirectorySource
from sealtrail.note import Signature, parse_note, parse_verifier
from sealtrail.objectstore import DirectorySink, WriteOnceError
from sealtrail.publish import Publisher, objects_between
from sealtrail.tiles import TileRef, TreeEdge, tiles_for_size
from sealtrail.verify import AuditError, verify_tiles_log

GROWTH = [5, 100, 151, 300, 1]
"""Batches: partial tiles (5, 105), the first full tile (256), a level-1 tile (556), one more (557)."""


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _verify(root: Path, directory: DataDir) -> int:
    verifier = parse_verifier(directory.vkey.read_text().strip())
    source = DirectorySource(root)
    checkpoint = verify_tiles_log(
        source.fetch, verifier.name, verifier, extra_checkpoints=source.archived_checkpoints()
    )
    leaves = [rfc6962_leaf(entry) for _, entry in stored_entries(directory.db)]
    assert checkpoint.root == rfc6962_root(leaves[: checkpoint.size])
    return checkpoint.size


def _everything(sizes: list[int]) -> set[TileRef]:
    """Every tile of the latest size, the partial tiles of every size, and their bundles (as `tiles export` had it)."""
    refs = set(tiles_for_size(sizes[-1]))
    for size in sizes:
        refs.update(ref for ref in TreeEdge.edge_refs(size) if ref.width)
    return refs | {TileRef(None, ref.index, ref.width) for ref in refs if ref.level == 0}


@given(st.lists(st.integers(1, 300_000), min_size=1, max_size=8, unique=True), st.data())
def test_incremental_runs_add_up_to_a_full_one(raw: list[int], data: st.DataObject) -> None:
    sizes = sorted(raw)
    assert set(objects_between(0, sizes)) == _everything(sizes)
    split = data.draw(st.integers(1, len(sizes)))
    done, rest = sizes[:split], sizes[split:]
    first = objects_between(0, done)
    second = objects_between(done[-1], rest)
    assert set(first) | set(second) == _everything(sizes)
    if rest:  # nothing is published twice
        assert not {ref.path for ref in first} & {ref.path for ref in second}
    assert objects_between(sizes[-1], []) == []


def test_hash_tiles_come_before_bundles() -> None:
    order = objects_between(0, [70_000])
    kinds = [ref.level is None for ref in order]
    assert kinds == sorted(kinds)
    levels = [ref.level for ref in order if ref.level is not None]
    assert levels == sorted(levels)


@pytest.mark.parametrize("workers", [1, 4])
def test_growing_log_published_step_by_step_equals_a_one_shot_export(
    workers: int, data_dir: DataDir, tmp_path: Path
) -> None:
    out = tmp_path / f"published-{workers}"
    sink = DirectorySink(out)
    store = data_dir.store()
    try:
        publisher = Publisher(store, sink, checkpoint_history=True, workers=workers)
        start = 0
        for count in GROWTH:
            with data_dir.open_log(checkpoint_interval=0) as log:
                log.append(devsecops_events(start, count, "publish"))
            start += count
            plan = publisher.plan()
            assert plan.after == (None if start == count else start - count)
            result = publisher.execute(plan)
            assert (result.size, result.present) == (start, 0)
            assert result.written == plan.total == len(plan.objects) + len(plan.history) + 1
            assert _verify(out, data_dir) == start
        assert publisher.publish().written == 0
        sizes = [size for size, _ in store.checkpoints()]
    finally:
        store.close()
    assert sizes[-1] == sum(GROWTH)
    files = _files(out)
    assert {name for name in files if name.startswith("checkpoint.")} == {f"checkpoint.{s}" for s in sizes}
    assert {name for name in files if name.startswith("tile/")} == {ref.path for ref in _everything(sizes)}

    fresh = tmp_path / "fresh"
    store = data_dir.store()
    try:
        Publisher(store, DirectorySink(fresh), checkpoint_history=True).publish()
    finally:
        store.close()
    assert _files(fresh) == files


def test_a_new_publisher_resumes_from_the_sinks_checkpoint(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 300, "resume"))
    store = data_dir.store()
    try:
        Publisher(store, DirectorySink(out)).publish()
        with data_dir.open_log(checkpoint_interval=0) as log:
            log.append(devsecops_events(300, 20, "resume"))
        plan = Publisher(store, DirectorySink(out)).plan()
    finally:
        store.close()
    assert (plan.after, plan.size) == (300, 320)
    assert {ref.path for ref in plan.objects} == {"tile/0/001.p/64", "tile/entries/001.p/64"}  # tile/1/000.p/1 is there


def test_a_foreign_checkpoint_in_the_sink_means_publishing_everything(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 40, "foreign"))
    store = data_dir.store()
    try:
        Publisher(store, DirectorySink(out)).publish()
        (out / "checkpoint").write_bytes(b"not a checkpoint\n")
        plan = Publisher(store, DirectorySink(out)).plan()
        assert plan.after is None
        result = Publisher(store, DirectorySink(out)).execute(plan)
    finally:
        store.close()
    assert (result.written, result.present) == (1, len(plan.objects))
    assert _verify(out, data_dir) == 40


def test_another_log_in_the_sink_is_refused_and_its_checkpoint_kept(data_dir: DataDir, tmp_path: Path) -> None:
    other = DataDir(tmp_path / "other")
    other.init(ORIGIN)
    for directory, tag in ((data_dir, "ours"), (other, "theirs")):
        with directory.open_log(checkpoint_interval=0) as log:
            log.append(devsecops_events(0, 30, tag))
    out = tmp_path / "out"
    store = other.store()
    try:
        Publisher(store, DirectorySink(out)).publish()
    finally:
        store.close()
    before = _files(out)
    store = data_dir.store()
    try:
        with pytest.raises(WriteOnceError, match="other content"):
            Publisher(store, DirectorySink(out)).publish()
    finally:
        store.close()
    assert _files(out) == before


class _FailingSink(DirectorySink):
    """A directory whose disk fills up after `budget` more immutable objects."""

    def __init__(self, root: Path, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    def put_once(self, path: str, data: bytes) -> bool:
        if self.budget == 0:
            raise OSError("No space left on device")
        self.budget -= 1
        return super().put_once(path, data)


def test_a_run_that_fails_halfway_leaves_the_previous_checkpoint_valid(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 100, "halfway"))
    store = data_dir.store()
    try:
        Publisher(store, DirectorySink(out), checkpoint_history=True).publish()
        with data_dir.open_log(checkpoint_interval=0) as log:
            log.append(devsecops_events(100, 200, "halfway"))
        publisher = Publisher(store, _FailingSink(out, budget=2), checkpoint_history=True)
        with pytest.raises(OSError, match="No space"):
            publisher.publish()
        assert publisher.published_size == 100
        assert _verify(out, data_dir) == 100
        assert not (out / "checkpoint.300").exists()
        publisher.sink = DirectorySink(out)
        result = publisher.publish()
    finally:
        store.close()
    assert result.present == 2
    assert _verify(out, data_dir) == 300


def test_export_directory_copied_then_published_again_is_unchanged(data_dir: DataDir, tmp_path: Path) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 260, "copy"))
    out = tmp_path / "out"
    store = data_dir.store()
    try:
        Publisher(store, DirectorySink(out)).publish()
        copy = Path(shutil.copytree(out, tmp_path / "copy"))
        (copy / "checkpoint").unlink()
        result = Publisher(store, DirectorySink(copy)).publish()
    finally:
        store.close()
    assert result.written == 1  # only the checkpoint
    assert _files(copy) == _files(out)


def test_a_changed_partial_tile_of_an_older_checkpoint_fails_verify(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    store = data_dir.store()
    try:
        publisher = Publisher(store, DirectorySink(out), checkpoint_history=True)
        for start, count in ((0, 100), (100, 200)):
            with data_dir.open_log(checkpoint_interval=0) as log:
                log.append(devsecops_events(start, count, "older"))
            publisher.publish()
    finally:
        store.close()
    assert _verify(out, data_dir) == 300
    for name in ("tile/0/000.p/100", "tile/entries/000.p/100"):
        path = out / name
        original = path.read_bytes()
        changed = bytearray(original)
        changed[-3] ^= 0x01
        path.write_bytes(bytes(changed))
        with pytest.raises(AuditError, match="kept for checkpoint 100"):
            _verify(out, data_dir)
        path.unlink()  # a log may drop partial tiles once they are full: clients then read the full tile
        assert _verify(out, data_dir) == 300
        path.write_bytes(original)


def test_new_cosignatures_rewrite_only_the_checkpoint(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 30, "cosigned"))
    witness = CosignatureSigner("witness.example/w1", bytes(range(32)), 1_700_000_000)
    store = data_dir.store()
    try:
        publisher = Publisher(store, DirectorySink(out), checkpoint_history=True)
        publisher.publish()
        size, signed = store.latest_checkpoint() or (0, b"")
        body = parse_note(signed)[0].encode()
        line = Signature(witness.name, witness.key_id, witness.sign(body)).line()
        assert store.add_cosignature(size, witness.name, witness.key_id, line)
        for fresh in (False, True):  # the same publisher, and a new one that finds the old checkpoint in the sink
            plan = (Publisher(store, DirectorySink(out), checkpoint_history=True) if fresh else publisher).plan()
            assert (plan.objects, plan.history, plan.write_checkpoint) == ([], [], not fresh)
            if not fresh:
                assert publisher.execute(plan).written == 1
        assert publisher.plan().up_to_date
    finally:
        store.close()
    cosigned = (out / "checkpoint").read_bytes()
    assert cosigned == signed + line.encode()
    assert witness.verifier.verify(body, parse_note(cosigned)[1][-1].signature)
    assert (out / f"checkpoint.{size}").read_bytes() == signed
    assert _verify(out, data_dir) == 30
