"""Publishing a log as c2sp.org/tlog-tiles to a sink, incrementally (sealtrail.publish).

Runs against DirectorySink; tests/test_s3.py runs the same publisher against S3.
"""

from __future__ import annotations

import shutil
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _support import ORIGIN, FillingSink, devsecops_events, files_under, rfc6962_leaf, rfc6962_root, stored_entries
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


def _append(directory: DataDir, start: int, count: int, tag: str) -> None:
    """Events start..start+count-1 appended through a sequencer that signs their checkpoint before it closes."""
    with directory.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(start, count, tag))


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
    with closing(data_dir.store()) as store:
        publisher = Publisher(store, sink, checkpoint_history=True, workers=workers)
        start = 0
        for count in GROWTH:
            _append(data_dir, start, count, "publish")
            start += count
            plan = publisher.plan()
            assert plan.after == (None if start == count else start - count)
            result = publisher.execute(plan)
            assert (result.size, result.present) == (start, 0)
            assert result.written == plan.total == len(plan.objects) + len(plan.history) + 1
            assert _verify(out, data_dir) == start
        assert publisher.publish().written == 0
        sizes = [size for size, _ in store.checkpoints()]
    assert sizes[-1] == sum(GROWTH)
    files = files_under(out)
    assert {name for name in files if name.startswith("checkpoint.")} == {f"checkpoint.{s}" for s in sizes}
    assert {name for name in files if name.startswith("tile/")} == {ref.path for ref in _everything(sizes)}

    fresh = tmp_path / "fresh"
    with closing(data_dir.store()) as store:
        Publisher(store, DirectorySink(fresh), checkpoint_history=True).publish()
    assert files_under(fresh) == files


def test_a_new_publisher_resumes_from_the_sinks_checkpoint(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _append(data_dir, 0, 300, "resume")
    with closing(data_dir.store()) as store:
        Publisher(store, DirectorySink(out)).publish()
        _append(data_dir, 300, 20, "resume")
        plan = Publisher(store, DirectorySink(out)).plan()
    assert (plan.after, plan.size) == (300, 320)
    assert {ref.path for ref in plan.objects} == {"tile/0/001.p/64", "tile/entries/001.p/64"}  # tile/1/000.p/1 is there


def test_a_foreign_checkpoint_in_the_sink_means_publishing_everything(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _append(data_dir, 0, 40, "foreign")
    with closing(data_dir.store()) as store:
        Publisher(store, DirectorySink(out)).publish()
        (out / "checkpoint").write_bytes(b"not a checkpoint\n")
        plan = Publisher(store, DirectorySink(out)).plan()
        assert plan.after is None
        result = Publisher(store, DirectorySink(out)).execute(plan)
    assert (result.written, result.present) == (1, len(plan.objects))
    assert _verify(out, data_dir) == 40


def test_another_log_in_the_sink_is_refused_and_its_checkpoint_kept(data_dir: DataDir, tmp_path: Path) -> None:
    other = DataDir(tmp_path / "other")
    other.init(ORIGIN)
    for directory, tag in ((data_dir, "ours"), (other, "theirs")):
        _append(directory, 0, 30, tag)
    out = tmp_path / "out"
    with closing(other.store()) as store:
        Publisher(store, DirectorySink(out)).publish()
    before = files_under(out)
    with closing(data_dir.store()) as store, pytest.raises(WriteOnceError, match="other content"):
        Publisher(store, DirectorySink(out)).publish()
    assert files_under(out) == before


def test_a_run_that_fails_halfway_leaves_the_previous_checkpoint_valid(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _append(data_dir, 0, 100, "halfway")
    with closing(data_dir.store()) as store:
        Publisher(store, DirectorySink(out), checkpoint_history=True).publish()
        _append(data_dir, 100, 200, "halfway")
        publisher = Publisher(store, FillingSink(out, budget=2), checkpoint_history=True)
        with pytest.raises(OSError, match="No space"):
            publisher.publish()
        assert publisher.published_size == 100
        assert _verify(out, data_dir) == 100
        assert not (out / "checkpoint.300").exists()
        publisher.sink = DirectorySink(out)
        result = publisher.publish()
    assert result.present == 2
    assert _verify(out, data_dir) == 300


def test_export_directory_copied_then_published_again_is_unchanged(data_dir: DataDir, tmp_path: Path) -> None:
    _append(data_dir, 0, 260, "copy")
    out = tmp_path / "out"
    with closing(data_dir.store()) as store:
        Publisher(store, DirectorySink(out)).publish()
        copy = Path(shutil.copytree(out, tmp_path / "copy"))
        (copy / "checkpoint").unlink()
        result = Publisher(store, DirectorySink(copy)).publish()
    assert result.written == 1  # only the checkpoint
    assert files_under(copy) == files_under(out)


def test_a_changed_partial_tile_of_an_older_checkpoint_fails_verify(data_dir: DataDir, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with closing(data_dir.store()) as store:
        publisher = Publisher(store, DirectorySink(out), checkpoint_history=True)
        for start, count in ((0, 100), (100, 200)):
            _append(data_dir, start, count, "older")
            publisher.publish()
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
    _append(data_dir, 0, 30, "cosigned")
    witness = CosignatureSigner("witness.example/w1", bytes(range(32)), 1_700_000_000)
    with closing(data_dir.store()) as store:
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
    cosigned = (out / "checkpoint").read_bytes()
    assert cosigned == signed + line.encode()
    assert witness.verifier.verify(body, parse_note(cosigned)[1][-1].signature)
    assert (out / f"checkpoint.{size}").read_bytes() == signed
    assert _verify(out, data_dir) == 30
