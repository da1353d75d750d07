"""Entry bundles in redacted form (tiles.redacted_bundle_path): published, verified, mirrored.

After a logged redaction the signed bundle bytes are gone for good. A copy of the log
(`tiles export`, the archive, a mirror) holds the bundle with the redacted entries empty
under redacted/, and `tiles verify` takes their leaf hashes from the hash tiles only if a
redaction, retention or erasure record later in the log lists each of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from _follow_fixtures import Branch
from _support import one_error_line
from conftest import CliResult
from sealtrail.fetch import DirectorySource
from sealtrail.follow import Kind
from sealtrail.mirror import Mirror
from sealtrail.note import parse_verifier
from sealtrail.objectstore import DirectorySink
from sealtrail.publish import Publisher
from sealtrail.redaction import commit_redactions
from sealtrail.tiles import decode_bundle, encode_bundle, entries_path, redacted_bundle_path
from sealtrail.verify import AuditError, AuditReport, verify_tiles_log
from sealtrail.view import LogView, NotYetSigned

Cli = Callable[..., CliResult]
REDACTED = [5, 300, 301, 520]


def _redact(branch: Branch, indices: list[int], kind: str = "log.redaction") -> int:
    """Redact `indices` with one record; the log closes, signing a checkpoint that covers it. The record's index."""
    log = branch.directory.open_log(checkpoint_interval=0)
    try:
        done = commit_redactions(
            log, indices, source_id="retention", kind=kind, action="redact", reason="test", attrs={}
        )
    finally:
        log.close()
    return done[0].record.index


@pytest.fixture
def redacted(tmp_path: Path) -> tuple[Branch, Path, list[int]]:
    """600 events, 4 of them redacted by two records, published to tmp_path/site."""
    branch = Branch.create(tmp_path / "log")
    branch.grow(600)
    records = [_redact(branch, REDACTED[:3]), _redact(branch, REDACTED[3:], "log.erasure")]
    site = tmp_path / "site"
    store = branch.directory.store()
    try:  # with checkpoint.<size> copies, so that verify checks the partial bundles kept for them
        Publisher(store, DirectorySink(site), checkpoint_history=True).publish()
    finally:
        store.close()
    return branch, site, records


def _verify(root: Path, vkey: str) -> AuditReport:
    verifier = parse_verifier(vkey)
    source = DirectorySource(root)
    report = AuditReport()
    verify_tiles_log(
        source.fetch, verifier.name, verifier, extra_checkpoints=source.archived_checkpoints(), report=report
    )
    return report


def _rewrite(path: Path, width: int, change: Callable[[list[bytes]], None]) -> None:
    entries = decode_bundle(path.read_bytes(), width)
    change(entries)
    path.write_bytes(encode_bundle(entries))


def test_the_copy_holds_redacted_forms_that_verify(redacted: tuple[Branch, Path, list[int]]) -> None:
    branch, site, records = redacted
    store = branch.directory.store()
    bodies = dict(store.entries(0, 602))
    store.close()
    for index, width in ((0, 256), (1, 256), (2, 90)):  # size 602; 520 is in the third bundle
        assert not (site / entries_path(index, width)).exists()
        entries = decode_bundle((site / redacted_bundle_path(index, width)).read_bytes(), width)
        for pos, entry in enumerate(entries):
            at = index * 256 + pos
            assert entry == (b"" if at in REDACTED else bodies[at]), at
    report = _verify(site, branch.vkey)
    assert report.size == 602
    assert report.redacted_ranges == [[5, 5], [300, 301], [520, 520]]
    assert report.redaction_records == records == [600, 601]


def test_every_older_checkpoint_partial_is_checked_against_the_redacted_form(
    redacted: tuple[Branch, Path, list[int]],
) -> None:
    branch, site, _ = redacted
    kept = site / redacted_bundle_path(2, 88)  # the partial bundle of checkpoint 600, published after the erasure
    assert kept.exists() and decode_bundle(kept.read_bytes(), 88)[520 - 512] == b""
    _rewrite(kept, 88, lambda entries: entries.__setitem__(3, entries[3] + b" "))
    with pytest.raises(AuditError, match=r"^redacted/tile/entries/002.p/88 \(kept for checkpoint 600\) does not match"):
        _verify(site, branch.vkey)


def test_an_entry_emptied_without_a_record_is_an_unaccounted_redaction(
    redacted: tuple[Branch, Path, list[int]],
) -> None:
    branch, site, _ = redacted
    _rewrite(site / redacted_bundle_path(0, 256), 256, lambda entries: entries.__setitem__(6, b""))
    with pytest.raises(AuditError) as caught:
        _verify(site, branch.vkey)
    assert str(caught.value).startswith("index 6: unaccounted redaction")


def test_a_record_does_not_account_for_indices_after_it(tmp_path: Path) -> None:
    branch = Branch.create(tmp_path / "log")
    branch.grow(10)
    record = _redact(branch, [2])
    branch.grow(5)
    site = tmp_path / "site"
    branch.publish(site)
    assert _verify(site, branch.vkey).redacted_ranges == [[2, 2]]
    # An operator hides entry 12, after the record at 10 (which lists only 2): the bundle in redacted form.
    _rewrite(site / redacted_bundle_path(0, 16), 16, lambda entries: entries.__setitem__(12, b""))
    with pytest.raises(AuditError, match=r"^index 12: unaccounted redaction"):
        _verify(site, branch.vkey)
    assert record == 10


@pytest.mark.parametrize(
    ("position", "change"),
    [(7, lambda entry: entry[:-1] + b" "), (5, lambda entry: b'{"kind":"forged"}')],
    ids=["a changed body", "a body put back that is not the original"],
)
def test_bodies_in_a_redacted_form_must_hash_to_their_leaves(
    redacted: tuple[Branch, Path, list[int]], position: int, change: Callable[[bytes], bytes]
) -> None:
    branch, site, _ = redacted
    _rewrite(
        site / redacted_bundle_path(0, 256),
        256,
        lambda entries: entries.__setitem__(position, change(entries[position] or b"{}")),
    )
    with pytest.raises(AuditError, match=rf"^index {position}: entry bytes do not match the leaf hash"):
        _verify(site, branch.vkey)


def test_a_bundle_missing_in_both_forms_is_reported(redacted: tuple[Branch, Path, list[int]]) -> None:
    branch, site, _ = redacted
    (site / redacted_bundle_path(1, 256)).unlink()
    with pytest.raises(AuditError, match=r"^tile/entries/001 is missing"):
        _verify(site, branch.vkey)


def test_cli_export_and_verify_report_the_redactions(tmp_path: Path, cli: Cli) -> None:
    branch = Branch.create(tmp_path / "log")
    branch.grow(300)
    _redact(branch, [1, 2, 290])
    out = tmp_path / "export"
    exported = cli("tiles", "export", out, "--dir", branch.directory.path)
    assert exported.code == 0, exported.stderr
    assert "span redacted entries: written under redacted/ with those entries empty" in exported.stderr
    verified = cli("tiles", "verify", out, "--vkey", branch.directory.vkey)
    assert verified.code == 0, verified.stderr
    assert "redacted: 3 entries (1-2, 290), accounted for by the records at 300" in verified.text
    local = cli("verify", "--dir", branch.directory.path)
    assert "redacted: 3 entries (1-2, 290), accounted for by the records at 300" in local.text

    bundle = out / redacted_bundle_path(1, 45)
    _rewrite(bundle, 45, lambda entries: entries.__setitem__(0, b""))
    tampered = cli("tiles", "verify", out, "--vkey", branch.directory.vkey)
    assert tampered.code == 1
    assert one_error_line(tampered.stderr).startswith("error: tiles log is NOT intact: index 256: unaccounted")


def test_a_mirror_copies_redacted_forms_and_its_copy_verifies(
    redacted: tuple[Branch, Path, list[int]], tmp_path: Path
) -> None:
    branch, site, records = redacted
    verifier = parse_verifier(branch.vkey)
    copy = tmp_path / "copy"
    mirror = Mirror(DirectorySource(site), DirectorySink(copy), verifier.name, verifier)
    observed = mirror.poll()
    assert observed.kind is Kind.OK, observed.message
    assert (copy / redacted_bundle_path(0, 256)).read_bytes() == (site / redacted_bundle_path(0, 256)).read_bytes()
    assert not (copy / entries_path(0)).exists()
    assert _verify(copy, branch.vkey).redaction_records == records


def test_a_mirror_refuses_a_redacted_form_whose_tile_disagrees(
    redacted: tuple[Branch, Path, list[int]], tmp_path: Path
) -> None:
    """An emptied entry takes its leaf from the served tile; a forged tile then fails against the signed root."""
    branch, site, _ = redacted
    tile = site / "tile/0/000"
    data = bytearray(tile.read_bytes())
    data[5 * 32] ^= 1
    tile.write_bytes(bytes(data))
    verifier = parse_verifier(branch.vkey)
    copy = tmp_path / "copy"
    observed = Mirror(DirectorySource(site), DirectorySink(copy), verifier.name, verifier).poll()
    assert observed.kind is not Kind.OK
    assert not (copy / "checkpoint").exists()


def test_a_redacted_form_waits_for_the_checkpoint_that_covers_its_record(tmp_path: Path) -> None:
    branch = Branch.create(tmp_path / "log")
    branch.grow(20)
    log = branch.directory.open_log(checkpoint_interval=3600)
    try:
        signed, _ = log.latest_checkpoint()
        commit_redactions(log, [3], source_id="retention", kind="log.redaction", action="x", reason="t", attrs={})
        view = LogView(branch.directory.store())
        try:
            with pytest.raises(NotYetSigned, match="the record at index 20, which no signed checkpoint covers yet"):
                view.redacted_bundle(0, 20, 20, signed)
            log.sign_now()
            signed, _ = log.latest_checkpoint()
            assert signed == 21
            form = view.redacted_bundle(0, 20, 20, signed)
            assert form is not None and decode_bundle(form, 20)[3] == b""
            assert view.redacted_bundle(0, 3, 3, signed) is None  # spans no redacted entry
        finally:
            view.store.close()
    finally:
        log.close()


def test_a_copy_made_before_a_redaction_keeps_the_body_and_still_verifies(tmp_path: Path) -> None:
    """Copies keep what they already hold (docs/retention.md); the newer redacted forms join them."""
    branch = Branch.create(tmp_path / "log")
    branch.grow(300)
    site = tmp_path / "site"
    branch.publish(site)
    before = (site / entries_path(0)).read_bytes()
    _redact(branch, [7])
    branch.grow(10)
    branch.publish(site)
    assert (site / entries_path(0)).read_bytes() == before
    assert _verify(site, branch.vkey).redacted == 0  # every body is still there, read at its own path
    shutil.rmtree(site)
    branch.publish(site)
    assert _verify(site, branch.vkey).redacted_ranges == [[7, 7]]
