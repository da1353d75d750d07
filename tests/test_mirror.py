"""The mirror (sealtrail.mirror): a verified, incremental copy of a tiles log that stops on a fork.

Sources are real sealtrail logs published as tiles directories (and forks of
them signed by the same key), Tessera's log in stages, and a live sealtrail
server taking 10,000 events while it is mirrored.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest

from _follow_fixtures import Branch, RecordingSource, TesseraStages
from _support import (
    ORIGIN,
    FillingSink,
    devsecops_event,
    files_under,
    ndjson,
    rfc6962_leaf,
    rfc6962_root,
    static_http,
    wait_for,
)
from _witness_fixtures import Served, bound_socket, served, socket_url
from conftest import run_cli
from sealtrail.checkpoint import open_checkpoint
from sealtrail.cosignature import CosignatureVerifier
from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.fetch import DirectorySource, HttpSource, TilesSource
from sealtrail.follow import CONFLICTING_FILE, EVIDENCE_FILE, TRUSTED_FILE, Kind
from sealtrail.merkle import verify_consistency
from sealtrail.mirror import FORK_DIR, Mirror, MirrorError
from sealtrail.mirror_app import create_mirror_app
from sealtrail.note import NoteError, generate_ed25519, open_note, parse_verifier
from sealtrail.objectstore import DirectorySink
from sealtrail.redaction import commit_redactions
from sealtrail.server import Settings, create_app
from sealtrail.verify import AuditReport, verify_tiles_log
from sealtrail.witnessing import WitnessingSettings, parse_witnessing


@pytest.fixture
def main_log(tmp_path: Path) -> Branch:
    branch = Branch.create(tmp_path / "log-a", "a")
    branch.grow(300, batch=100)
    return branch


def _mirror(source: Path | TilesSource, copy: Path, vkey: str, **options: object) -> Mirror:
    verifier = parse_verifier(vkey)
    tiles = source if isinstance(source, TilesSource) else DirectorySource(source)
    return Mirror(tiles, DirectorySink(copy), verifier.name, verifier, **options)  # type: ignore[arg-type]


def _mirrored(branch: Branch, tmp_path: Path, **options: object) -> tuple[Path, Path, Mirror]:
    """`branch` published to tmp_path/site, and a mirror of it to tmp_path/copy after one successful poll."""
    site, copy = tmp_path / "site", tmp_path / "copy"
    branch.publish(site)
    mirror = _mirror(site, copy, branch.vkey, **options)
    first = mirror.poll()
    assert first.kind is Kind.OK, first.message
    return site, copy, mirror


def _verify_copy(copy: Path, vkey: str) -> tuple[int, bytes]:
    verifier = parse_verifier(vkey)
    source = DirectorySource(copy)
    latest = verify_tiles_log(source.fetch, verifier.name, verifier, extra_checkpoints=source.archived_checkpoints())
    return latest.size, latest.root


def test_mirror_keeps_a_verified_copy_that_is_itself_a_tiles_log(main_log: Branch, tmp_path: Path) -> None:
    site, copy = tmp_path / "site", tmp_path / "copy"
    main_log.publish(site)
    mirror = _mirror(site, copy, main_log.vkey)
    first = mirror.poll()
    assert first.kind is Kind.OK and first.changed, first.message
    assert (copy / "checkpoint").read_bytes() == main_log.note()
    assert _verify_copy(copy, main_log.vkey) == (300, main_log.checkpoint().root)
    source = files_under(site)
    for path, data in files_under(copy).items():
        if path.startswith("tile/"):
            assert source[path] == data, path
    assert mirror.poll().kind is Kind.OK  # unchanged
    assert mirror.status.snapshot()["verified_size"] == 300


def test_each_step_fetches_only_new_bundles_and_the_tiles_they_change(main_log: Branch, tmp_path: Path) -> None:
    site, copy = tmp_path / "site", tmp_path / "copy"
    main_log.publish(site)
    recording = RecordingSource(DirectorySource(site))
    mirror = _mirror(recording, copy, main_log.vkey)
    assert mirror.poll().kind is Kind.OK
    main_log.grow(600)
    main_log.publish(site)
    recording.fetched.clear()
    step = mirror.poll()
    assert step.kind is Kind.OK and "extends size 300" in step.message, step.message
    bundles = sorted(path for path in recording.fetched if path.startswith("tile/entries/"))
    assert bundles == ["tile/entries/001", "tile/entries/002", "tile/entries/003.p/132"]
    assert "tile/0/000" not in recording.fetched
    assert _verify_copy(copy, main_log.vkey) == (900, main_log.checkpoint().root)
    # a new process picks up where the copy is
    main_log.grow(100)
    main_log.publish(site)
    again = _mirror(site, copy, main_log.vkey)
    assert again.size == 900 and again.poll().kind is Kind.OK and again.size == 1000


def test_a_corrupt_copy_is_refused(main_log: Branch, tmp_path: Path) -> None:
    site, copy, _ = _mirrored(main_log, tmp_path)
    edge = copy / "tile/0/001.p/44"
    data = bytearray(edge.read_bytes())
    data[0] ^= 1
    edge.write_bytes(bytes(data))
    with pytest.raises(MirrorError, match="corrupt"):
        _mirror(site, copy, main_log.vkey)
    edge.unlink()
    with pytest.raises(MirrorError, match=r"lacks tile/0/001\.p/44"):
        _mirror(site, copy, main_log.vkey)


def test_fork_at_the_same_size_stops_the_mirror_with_both_checkpoints_kept(main_log: Branch, tmp_path: Path) -> None:
    fork = main_log.fork(tmp_path / "log-b", "b")
    main_log.grow(50)
    fork.grow(50)
    site, copy, mirror = _mirrored(main_log, tmp_path)
    held = files_under(copy)
    fork.publish(site, fresh=True)
    seen = mirror.poll()
    assert seen.kind is Kind.FORK and mirror.stopped and FORK_DIR in seen.message
    evidence = copy / FORK_DIR
    assert (evidence / TRUSTED_FILE).read_bytes() == main_log.note()
    assert (evidence / CONFLICTING_FILE).read_bytes() == fork.note()
    assert "two signed checkpoints of size 350" in (evidence / EVIDENCE_FILE).read_text()
    assert {k: v for k, v in files_under(copy).items() if not k.startswith(FORK_DIR)} == held
    assert mirror.poll().kind is Kind.FORK  # it follows no further
    assert mirror.status.snapshot()["fork_detected"] is True
    with pytest.raises(MirrorError, match="fork evidence"):
        _mirror(site, copy, main_log.vkey)
    shutil.move(evidence, tmp_path / "examined")  # the operator moves the evidence away: it starts, and sees it again
    assert _mirror(site, copy, main_log.vkey).poll().kind is Kind.FORK


def test_a_rewrite_that_keeps_growing_is_a_fork_and_nothing_of_it_is_stored(main_log: Branch, tmp_path: Path) -> None:
    fork = main_log.fork(tmp_path / "log-b", "b")
    main_log.grow(20)
    fork.grow(400)
    site, copy, mirror = _mirrored(main_log, tmp_path)
    held = files_under(copy)
    fork.publish(site, fresh=True)
    seen = mirror.poll()
    assert seen.kind is Kind.FORK and seen.evidence is not None, seen.message
    evidence = seen.evidence
    assert evidence.implied_root is not None
    verify_consistency(320, 700, list(evidence.proof), evidence.implied_root, fork.checkpoint().root)
    assert evidence.implied_root == rfc6962_root([rfc6962_leaf(e) for e in fork.entries()[:320]])
    assert evidence.implied_root != main_log.checkpoint().root
    assert {k: v for k, v in files_under(copy).items() if not k.startswith(FORK_DIR)} == held
    assert (copy / FORK_DIR / CONFLICTING_FILE).read_bytes() == fork.note()


def test_a_stale_checkpoint_is_a_rollback_but_a_smaller_forked_one_is_a_fork(main_log: Branch, tmp_path: Path) -> None:
    fork = main_log.fork(tmp_path / "log-b", "b")
    fork.grow(50)  # B: 350 entries, agreeing with A on 300
    main_log.grow(200)  # A: 500
    site, _, mirror = _mirrored(main_log, tmp_path)
    (site / "checkpoint").write_bytes(main_log.note(300))
    stale = mirror.poll()
    assert stale.kind is Kind.ROLLBACK and not mirror.stopped and "consistent" in stale.message
    fork.publish(site, fresh=True)
    seen = mirror.poll()
    assert seen.kind is Kind.FORK and seen.evidence is not None, seen.message
    evidence = seen.evidence
    assert evidence.implied_root is not None
    verify_consistency(350, 500, list(evidence.proof), evidence.implied_root, main_log.checkpoint().root)
    assert evidence.implied_root != fork.checkpoint().root


def test_bad_signatures_write_nothing(main_log: Branch, tmp_path: Path) -> None:
    site, copy, mirror = _mirrored(main_log, tmp_path)
    held = files_under(copy)
    main_log.grow(300)
    main_log.publish(site)
    note = bytearray((site / "checkpoint").read_bytes())
    note[-10] ^= 0x01  # inside the signature
    (site / "checkpoint").write_bytes(bytes(note))
    seen = mirror.poll()
    assert seen.kind is Kind.BAD_SIGNATURE and not mirror.stopped
    assert files_under(copy) == held


@pytest.mark.parametrize("path", ["tile/0/001", "tile/entries/001", "tile/1/000.p/2"])
def test_a_changed_byte_in_the_source_is_caught_before_anything_is_stored(
    main_log: Branch, tmp_path: Path, path: str
) -> None:
    site, copy, mirror = _mirrored(main_log, tmp_path)
    held = files_under(copy)
    main_log.grow(300)
    main_log.publish(site)
    target = site / path
    original = target.read_bytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x20
    target.write_bytes(bytes(changed))
    seen = mirror.poll()
    assert seen.kind is Kind.BAD_TILES and seen.alarm and not mirror.stopped, seen.message
    assert files_under(copy) == held
    target.write_bytes(original)  # the source repairs it: the mirror carries on, nothing to undo
    assert mirror.poll().kind is Kind.OK
    assert _verify_copy(copy, main_log.vkey) == (600, main_log.checkpoint().root)


def test_a_changed_byte_served_over_http_is_caught(main_log: Branch, tmp_path: Path) -> None:
    site, copy = tmp_path / "site", tmp_path / "copy"
    main_log.publish(site)
    data = bytearray((site / "tile/0/000").read_bytes())
    data[100] ^= 0x01
    (site / "tile/0/000").write_bytes(bytes(data))
    with static_http(site) as url:
        mirror = _mirror(HttpSource(url), copy, main_log.vkey)
        seen = mirror.poll()
    assert seen.kind is Kind.BAD_TILES and "tile/0/000" in seen.message
    assert not copy.exists() or not (copy / "checkpoint").exists()


def test_an_interrupted_step_then_a_fork_beyond_the_copy_is_caught_by_the_write_once_rule(
    main_log: Branch, tmp_path: Path
) -> None:
    fork = main_log.fork(tmp_path / "log-b", "b")
    site, copy, _ = _mirrored(main_log, tmp_path)
    main_log.grow(300)
    main_log.publish(site)
    verifier = parse_verifier(main_log.vkey)
    interrupted = Mirror(DirectorySource(site), FillingSink(copy, 2), ORIGIN, verifier)
    cut = interrupted.poll()
    assert cut.kind is Kind.UNAVAILABLE and "No space left" in cut.message
    assert (copy / "checkpoint").read_bytes() == main_log.note(300)  # still a valid copy of 300
    assert _verify_copy(copy, main_log.vkey) == (300, main_log.checkpoint(300).root)
    fork.grow(300)  # B also extends 300 to 600, differently
    fork.publish(site, fresh=True)
    seen = _mirror(site, copy, main_log.vkey).poll()
    assert seen.kind is Kind.FORK, seen.message
    assert (copy / FORK_DIR / TRUSTED_FILE).read_bytes() == main_log.note()
    assert (copy / FORK_DIR / CONFLICTING_FILE).read_bytes() == fork.note()


def test_tessera_log_mirrored_as_it_grows_from_0_to_7_to_15(vectors: Path, tmp_path: Path) -> None:
    stages = TesseraStages(vectors, tmp_path / "tessera")
    copy = tmp_path / "copy"
    stages.at(0)
    with static_http(stages.root) as url:
        mirror = _mirror(HttpSource(url), copy, stages.vkey)
        assert mirror.poll().kind is Kind.OK
        assert (copy / "checkpoint").read_bytes() == (stages.log / "checkpoint.0").read_bytes()
        stages.at(7)
        assert mirror.poll().kind is Kind.OK
        stages.at(15)
        grown = mirror.poll()
        assert grown.kind is Kind.OK and grown.changed, grown.message
    for path in ("tile/0/000.p/15", "tile/entries/000.p/15"):
        assert (copy / path).read_bytes() == (stages.log / path).read_bytes()
    assert (copy / "checkpoint").read_bytes() == (stages.log / "checkpoint.15").read_bytes()
    assert (copy / "tile/entries/000.p/7").exists()  # the copy serves its earlier checkpoint's tiles too
    verified = run_cli("tiles", "verify", copy, "--vkey", stages.vkey)
    assert verified.code == 0, verified.stderr


def test_witness_key_cosigns_the_copy_and_archived_checkpoints_verify(main_log: Branch, tmp_path: Path) -> None:
    witness = generate_ed25519("mirror.sealtrail.test")
    site, copy, mirror = _mirrored(main_log, tmp_path, witness=witness, archive_checkpoints=True)
    main_log.grow(10)
    main_log.publish(site)
    assert mirror.poll().kind is Kind.OK
    cosigned = (copy / "checkpoint").read_bytes()
    cosigner = CosignatureVerifier(witness.name, witness.public_key)
    opened = open_note(cosigned, [cosigner])
    assert [sig.name for sig in opened.verified] == [witness.name]
    assert open_checkpoint(cosigned, ORIGIN, [parse_verifier(main_log.vkey)]).checkpoint == main_log.checkpoint()
    assert (copy / "checkpoint.300").read_bytes() == main_log.note(300)
    assert (copy / "checkpoint.310").read_bytes() == main_log.note(310)
    assert _verify_copy(copy, main_log.vkey) == (310, main_log.checkpoint().root)


# --- a live server ----------------------------------------------------------------------------------------------


class _LiveServer:
    """sealtrail's HTTP server (uvicorn in a thread) over a fresh log, with read and ingest tokens."""

    def __init__(self, root: Path, witnessing: WitnessingSettings | None = None) -> None:
        self.directory = DataDir(root)
        self.directory.init("live.sealtrail.test/log")
        credentials = Credentials(self.directory.credentials)
        self.read, _ = credentials.create_token("mirror", {"read"})
        self.ingest, _ = credentials.create_token("ingest", {"ingest"})
        settings = Settings(checkpoint_interval=0.05, prepare_workers=0, witnessing=witnessing or WitnessingSettings())
        self.app = create_app(self.directory, settings)
        self.sock = bound_socket()
        self.url = socket_url(self.sock)

    def __enter__(self) -> _LiveServer:
        self.served = Served(self.app, self.sock)
        return self

    def __exit__(self, *exc: object) -> None:
        self.served.stop()

    def checkpoint(self) -> bytes:
        response = httpx.get(f"{self.url}/checkpoint", headers={"Authorization": f"Bearer {self.read}"})
        assert response.status_code == 200
        return response.content

    def post(self, events: Iterable[dict[str, object]]) -> None:
        response = httpx.post(
            f"{self.url}/v1/events",
            content=ndjson(events),
            headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {self.ingest}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def live(tmp_path: Path) -> Iterator[_LiveServer]:
    with _LiveServer(tmp_path / "server") as server:
        yield server


def test_mirroring_a_live_server_while_10000_events_arrive(live: _LiveServer, tmp_path: Path) -> None:
    total, batch = 10_000, 250
    copy = tmp_path / "copy"
    vkey = live.directory.vkey.read_text().strip()
    verifier = parse_verifier(vkey)
    recording = RecordingSource(HttpSource(live.url, token=live.read))
    mirror = Mirror(recording, DirectorySink(copy), verifier.name, verifier)
    steps: list[int] = []
    stop = threading.Event()

    def follower() -> None:
        while not stop.is_set():
            observation = mirror.poll()
            assert observation.kind in (Kind.OK, Kind.UNAVAILABLE), observation.message
            if observation.changed:
                steps.append(mirror.size)
            stop.wait(0.05)

    def ingest() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {live.ingest}"}, timeout=60) as http:
            for first in range(0, total, batch):
                body = ndjson(devsecops_event(n, "live", explicit_id=7) for n in range(first, first + batch))
                response = http.post(
                    f"{live.url}/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"}
                )
                assert response.status_code == 200, response.text

    following = threading.Thread(target=follower)
    following.start()
    try:
        ingest()
        wait_for(
            lambda: open_checkpoint(live.checkpoint(), verifier.name, [verifier]).checkpoint.size == total,
            30,
            "the server's checkpoint",
        )
        wait_for(lambda: mirror.size == total, 60, "the mirror to catch up")
    finally:
        stop.set()
        following.join()
    latest = open_checkpoint(live.checkpoint(), verifier.name, [verifier])
    assert latest.checkpoint.size == total
    assert mirror.held is not None and mirror.held.checkpoint.root == latest.checkpoint.root
    assert len(steps) >= 3, steps  # it followed the log as it grew, checkpoint by checkpoint
    full_bundles = Counter(p for p in recording.fetched if p.startswith("tile/entries/") and ".p/" not in p)
    assert full_bundles and max(full_bundles.values()) == 1  # incremental: no full bundle fetched twice
    assert _verify_copy(copy, vkey) == (total, latest.checkpoint.root)
    verified = run_cli("tiles", "verify", copy, "--vkey", vkey)
    assert verified.code == 0, verified.stderr
    assert verified.text.strip().endswith(f"size {total} root {latest.checkpoint.text().split()[2]} verified")


def test_a_live_server_with_redacted_entries_is_mirrored_and_verified_over_http(
    live: _LiveServer, tmp_path: Path
) -> None:
    """The server answers 410 for a bundle spanning a redacted entry and serves its redacted form; a mirror and
    `tiles verify` over HTTP take it, and the mirror's own HTTP face serves it too."""
    vkey = live.directory.vkey.read_text().strip()
    verifier = parse_verifier(vkey)
    live.post(devsecops_event(n, "erase") for n in range(300))
    log = live.app.state.services.log
    done = commit_redactions(
        log, [3, 260], source_id="erasure", kind="log.erasure", action="erasure.request", reason="R-1", attrs={}
    )
    log.sign_now()
    record = done[0].record.index
    wait_for(lambda: open_checkpoint(live.checkpoint(), verifier.name, [verifier]).checkpoint.size == 301, 30, "sign")

    report = AuditReport()
    source = HttpSource(live.url, token=live.read)
    try:
        latest = verify_tiles_log(source.fetch, verifier.name, verifier, report=report)
    finally:
        source.close()
    assert latest.size == 301 and report.redacted_ranges == [[3, 3], [260, 260]]
    assert report.redaction_records == [record]

    copy = tmp_path / "copy"
    mirror = Mirror(HttpSource(live.url, token=live.read), DirectorySink(copy), verifier.name, verifier)
    observed = mirror.poll()
    assert observed.kind is Kind.OK, observed.message
    assert _verify_copy(copy, vkey) == (301, latest.root)
    with served(create_mirror_app(mirror.sink, mirror.status)) as face:
        verified = run_cli("tiles", "verify", face.url, "--vkey", vkey)
    assert verified.code == 0, verified.stderr
    assert f"redacted: 2 entries (3, 260), accounted for by the records at {record}" in verified.text


def test_a_log_configured_with_the_mirror_as_witness_gets_cosignatures_only_for_mirrored_checkpoints(
    tmp_path: Path,
) -> None:
    witness = generate_ed25519("mirror.sealtrail.test")
    cosigner = CosignatureVerifier(witness.name, witness.public_key)
    mirror_sock = bound_socket()
    witnessing = parse_witnessing(
        {"witness": [{"url": socket_url(mirror_sock), "vkey": cosigner.vkey}], "retry_max": 0.5}
    )
    with _LiveServer(tmp_path / "server", witnessing) as live:
        verifier = live.directory.verifier()
        source = HttpSource(live.url, token=live.read)
        mirror = Mirror(source, DirectorySink(tmp_path / "copy"), verifier.name, verifier, witness=witness)
        app = create_mirror_app(mirror.sink, mirror.status, mirror=mirror)
        with served(app, mirror_sock):
            for first in range(0, 600, 200):
                live.post(devsecops_event(n, "witnessed") for n in range(first, first + 200))

            def cosigned_at_600() -> bool:
                note = live.checkpoint()
                if open_checkpoint(note, verifier.name, [verifier]).checkpoint.size != 600:
                    return False
                try:
                    open_note(note, [cosigner])  # the mirror's cosignature, verified
                except NoteError:
                    return False
                return True

            wait_for(cosigned_at_600, 60, "the log's checkpoint 600 to carry the mirror's cosignature")
        assert mirror.held is not None and mirror.held.checkpoint.size == 600  # it mirrored before cosigning
        assert _verify_copy(tmp_path / "copy", verifier.vkey) == (600, mirror.held.checkpoint.root)
