"""Evidence bundles: a round trip verifies, and any changed byte is caught and blamed on its file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from _support import devsecops_event
from sealtrail.cosignature import CosignatureSigner
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.evidence import (
    EvidenceError,
    EvidenceItem,
    assemble_bundle,
    read_zip,
    verify_bundle,
    verify_zip,
    write_zip,
)
from sealtrail.log import Log
from sealtrail.note import Signature, parse_note, sign_note
from sealtrail.tlogproof import verify_tlog_proof
from sealtrail.view import LogView

WITNESS = CosignatureSigner("witness.example/w1", bytes(range(32)), 1_764_000_000)


def _cosign(note: bytes, signer: CosignatureSigner = WITNESS) -> bytes:
    text, signatures = parse_note(note)
    line = Signature(signer.name, signer.key_id, signer.sign(text.encode()))
    return sign_note(text, [], [*signatures, line])


def _bundle(data_dir: DataDir, log: Log, indices: list[int], *, big_raw: bool = False) -> dict[str, bytes]:
    events = [devsecops_event(n, "evidence") for n in range(40)]
    if big_raw:
        events[3]["raw"] = {"log": "x" * 70_000}
    log.append([prepare(event) for event in events])
    size, note = log.sign_now()
    store = data_dir.store()
    try:
        view = LogView(store)
        leaves = view.leaf_hashes(indices, size)
        items = [
            EvidenceItem(i, store.entry(i), leaf, view.inclusion_proof(i, size))
            for i, leaf in zip(indices, leaves, strict=True)
        ]
        blobs = {}
        for digest in _digests(items):
            blob = store.blob(digest)
            assert blob is not None
            blobs["sha256:" + digest] = blob
    finally:
        store.close()
    return assemble_bundle(
        checkpoint_note=_cosign(note),
        log_vkey=data_dir.vkey.read_text(),
        witness_vkeys=[WITNESS.verifier.vkey],
        items=items,
        blobs=blobs,
        query="kind:deploy",
        created="2026-11-26T12:00:00Z",
    )


def _digests(items: list[EvidenceItem]) -> list[str]:
    from sealtrail.evidence import blob_digests

    return [d.removeprefix("sha256:") for item in items if item.entry for d in blob_digests(item.entry)]


def test_round_trip_verifies_with_pinned_keys(data_dir: DataDir, log: Log, tmp_path: Path) -> None:
    files = _bundle(data_dir, log, [0, 3, 17, 39], big_raw=True)
    path = tmp_path / "evidence.zip"
    write_zip(files, path)
    read = read_zip(path)
    assert read == files
    report = verify_bundle(
        read,
        trusted_vkey=data_dir.vkey.read_text(),
        trusted_witnesses=[WITNESS.verifier.vkey],
        min_cosignatures=1,
    )
    assert (report.events, report.redacted, report.size) == (4, 0, 40)
    assert report.cosigners == (WITNESS.name,)
    assert report.warnings == []
    assert any(name.startswith("blobs/sha256-") for name in files)
    # each proof is a standard tlog-proof that checks on its own
    for index in (0, 3, 17, 39):
        verify_tlog_proof(
            files[f"proofs/{index}.tlog-proof"], report.origin, [data_dir.verifier()], files[f"events/{index}.json"]
        )


def test_same_input_same_zip(data_dir: DataDir, log: Log, tmp_path: Path) -> None:
    files = _bundle(data_dir, log, [1, 2])
    write_zip(files, tmp_path / "a.zip")
    write_zip(files, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_every_changed_byte_is_blamed_on_its_file(data_dir: DataDir, log: Log) -> None:
    files = _bundle(data_dir, log, [5, 6])
    verify_bundle(files, trusted_vkey=data_dir.vkey.read_text(), trusted_witnesses=[WITNESS.verifier.vkey])
    checked = 0
    for name, data in files.items():
        for position in range(len(data)):
            changed = bytearray(data)
            changed[position] ^= 0x01
            tampered = {**files, name: bytes(changed)}
            with pytest.raises(EvidenceError) as caught:
                verify_bundle(tampered, trusted_vkey=data_dir.vkey.read_text())
            assert caught.value.file == name, (name, position, str(caught.value))
            checked += 1
    assert checked == sum(len(d) for d in files.values())


def test_coherent_forgery_is_caught_by_the_proofs(data_dir: DataDir, log: Log) -> None:
    """An attacker who edits an event and rewrites the manifest to match still fails: the proof does not."""
    files = _bundle(data_dir, log, [7])
    forged_entry = files["events/7.json"].replace(b'"outcome":"', b'"outcome":"x', 1)
    assert forged_entry != files["events/7.json"]
    forged = _reseal({**files, "events/7.json": forged_entry})
    with pytest.raises(EvidenceError) as caught:
        verify_bundle(forged, trusted_vkey=data_dir.vkey.read_text())
    assert caught.value.file == "events/7.json"
    assert caught.value.index == 7


def test_a_checkpoint_from_another_key_is_refused(data_dir: DataDir, log: Log, tmp_path: Path) -> None:
    files = _bundle(data_dir, log, [0])
    other = DataDir(tmp_path / "other")
    other.init("test.sealtrail.local/log")
    with pytest.raises(EvidenceError) as caught:
        verify_bundle(files, trusted_vkey=other.vkey.read_text())
    assert caught.value.file == "log.vkey"


def test_missing_cosignatures_are_refused_when_required(data_dir: DataDir, log: Log) -> None:
    files = _bundle(data_dir, log, [0])
    with pytest.raises(EvidenceError, match="fewer than the 2 required"):
        verify_bundle(files, trusted_witnesses=[WITNESS.verifier.vkey], min_cosignatures=2)
    report = verify_bundle(files)  # bundled keys trusted, with warnings
    assert len(report.warnings) == 2


def test_added_and_removed_files_are_named(data_dir: DataDir, log: Log) -> None:
    files = _bundle(data_dir, log, [0, 1])
    with pytest.raises(EvidenceError) as caught:
        verify_bundle({**files, "events/2.json": b"{}"})
    assert caught.value.file == "events/2.json"
    with pytest.raises(EvidenceError) as caught:
        verify_bundle({k: v for k, v in files.items() if k != "proofs/1.tlog-proof"})
    assert caught.value.file == "proofs/1.tlog-proof"


def test_zip_with_unexpected_names_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../../etc/passwd", b"x")
    with pytest.raises(EvidenceError, match="not a file a sealtrail evidence bundle holds"):
        read_zip(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(EvidenceError, match="not a readable zip"):
        read_zip(path)


def _reseal(files: dict[str, bytes]) -> dict[str, bytes]:
    """Recompute the manifest's hashes and digest over changed files, as a forger would."""
    import hashlib

    import orjson

    from sealtrail.jcs import canonical_json

    manifest = orjson.loads(files["manifest.json"])
    del manifest["digest"]
    manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items()) if n != "manifest.json"}
    manifest["digest"] = hashlib.sha256(canonical_json(manifest)).hexdigest()
    return {**files, "manifest.json": canonical_json(manifest)}


def test_every_changed_byte_of_the_zip_fails(data_dir: DataDir, log: Log, tmp_path: Path) -> None:
    files = _bundle(data_dir, log, [2])
    path = tmp_path / "bundle.zip"
    write_zip(files, path)
    original = path.read_bytes()
    verify_zip(path, trusted_vkey=data_dir.vkey.read_text())
    blamed: set[str] = set()
    for position in range(len(original)):
        changed = bytearray(original)
        changed[position] ^= 0x01
        path.write_bytes(bytes(changed))
        with pytest.raises(EvidenceError) as caught:
            verify_zip(path, trusted_vkey=data_dir.vkey.read_text())
        blamed.add(caught.value.file)
    # content bytes are blamed on their own files; header bytes on the zip (or the name they corrupt)
    assert set(files) <= blamed
    assert "bundle.zip" in blamed


def test_a_manifest_naming_a_file_it_does_not_list_is_refused(data_dir: DataDir, log: Log) -> None:
    """A forger who drops an event's files and rewrites the manifest's file list (not its events) is named."""
    files = _bundle(data_dir, log, [4])
    forged = _reseal({k: v for k, v in files.items() if k not in ("events/4.json", "proofs/4.tlog-proof")})
    with pytest.raises(EvidenceError) as caught:
        verify_bundle(forged)
    assert caught.value.file == "proofs/4.tlog-proof" and caught.value.index == 4
