"""Interoperability: Go's reference golang.org/x/mod/sumdb/note and sumdb/tlog verify a sealtrail log.

A log is built through the real API in several batches (checkpoints at sizes 0, 1,
255, 256, 257 and 700, crossing tile boundaries), exported with the real CLI
(`sealtrail tiles export`), and handed with its older checkpoints, tlog-proofs and
consistency proofs (`sealtrail prove`) to verify_with_go.go, compiled once per session
against the x/mod sources in GOPATH mode, offline.

Without `go` or the x/mod sources these tests skip, except under CI=true, where .ci/run
installs them (Debian golang-go and golang-golang-x-mod-dev) and their absence is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from _support import ORIGIN, devsecops_events
from conftest import run_cli
from sealtrail.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.note import generate_ed25519, parse_note

GO_SOURCE = Path(__file__).resolve().parent / "verify_with_go.go"
DEBIAN_GOPATH = Path("/usr/share/gocode")
XMOD_PACKAGES = ("sumdb/note/note.go", "sumdb/tlog/tlog.go", "sumdb/tlog/tile.go")

BATCHES = (1, 254, 1, 1, 443)
"""Batch sizes: with checkpoint_interval=0 each batch gets its own checkpoint."""
SIZES = [0, 1, 255, 256, 257, 700]
LATEST = SIZES[-1]
PROOFS: list[tuple[int, int | None]] = [(0, None), (256, None), (699, None), (0, 1), (100, 255)]
"""(index, checkpoint size or None for the latest) of the tlog-proofs `sealtrail prove` makes."""
CONSISTENCY = [(1, LATEST), (255, LATEST), (256, 257), (LATEST, LATEST)]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true, where .ci/run must have installed it")
    pytest.skip(reason)


def _gopath() -> Path | None:
    """The first GOPATH entry (then Debian's) holding golang.org/x/mod's sumdb sources."""
    entries = [Path(p) for p in os.environ.get("GOPATH", "").split(os.pathsep) if p]
    for root in [*entries, DEBIAN_GOPATH]:
        xmod = root / "src" / "golang.org" / "x" / "mod"
        if all((xmod / package).is_file() for package in XMOD_PACKAGES):
            return root
    return None


@pytest.fixture(scope="session")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """verify_with_go.go built once per session (GOPATH mode, no network)."""
    go = shutil.which("go")
    if go is None:
        _unavailable("the Go toolchain is not installed (`go` not on PATH; apt-get install golang-go)")
    gopath = _gopath()
    if gopath is None:
        _unavailable(
            f"golang.org/x/mod sources not found in $GOPATH/src or {DEBIAN_GOPATH}/src "
            "(apt-get install golang-golang-x-mod-dev)"
        )
    work = tmp_path_factory.mktemp("go")
    binary = work / "verify_with_go"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(gopath),
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    proc = subprocess.run(
        [go, "build", "-o", str(binary), str(GO_SOURCE)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"go build {GO_SOURCE.name} failed:\n{proc.stderr}")
    return binary


@dataclass(frozen=True)
class GoResult:
    code: int
    stdout: str
    stderr: str


def run_go(binary: Path, *args: str | os.PathLike[str]) -> GoResult:
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, timeout=120, check=False)
    return GoResult(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


@dataclass(frozen=True)
class ExportedLog:
    data: DataDir
    tiles: Path
    notes: dict[int, bytes]
    """Every stored checkpoint note, by tree size."""
    checkpoint_files: list[Path]
    proof_files: list[Path]
    consistency_args: list[str]
    """OLD:NEW:FILE for verify_with_go's -consistency."""

    @property
    def vkey(self) -> str:
        return self.data.vkey.read_text().strip()

    def args(self, tiles: Path | None = None, *, extra: bool = True) -> list[str]:
        """verify_with_go arguments: the tiles directory, the vkey file and (extra) every file to check."""
        out = ["tiles", "-dir", str(tiles or self.tiles), "-vkey", str(self.data.vkey)]
        if extra:
            out += [arg for path in self.checkpoint_files for arg in ("-old", str(path))]
            out += [arg for path in self.proof_files for arg in ("-proof", str(path))]
            out += [arg for spec in self.consistency_args for arg in ("-consistency", spec)]
        return out


def _cli_output(*args: str | os.PathLike[str]) -> bytes:
    result = run_cli(*args)
    assert result.code == 0, f"sealtrail {' '.join(map(str, args))}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> ExportedLog:
    root = tmp_path_factory.mktemp("interop")
    data = DataDir(root / "log")
    data.init(ORIGIN)
    log = data.open_log(checkpoint_interval=0)
    try:
        start = 0
        for count in BATCHES:
            receipts = log.append(devsecops_events(start, count, "go-interop"))
            assert [r.index for r in receipts] == list(range(start, start + count))
            start += count
    finally:
        log.close()
    store = data.store()
    try:
        notes = dict(store.checkpoints())
    finally:
        store.close()
    assert sorted(notes) == SIZES

    saved = root / "checkpoints"
    saved.mkdir()
    checkpoint_files = []
    for size, note in sorted(notes.items()):
        path = saved / f"checkpoint.{size}"
        path.write_bytes(note)
        checkpoint_files.append(path)

    tiles = root / "tiles"
    _cli_output("tiles", "export", "--dir", data.path, tiles)

    proofs = root / "proofs"
    proofs.mkdir()
    proof_files = []
    for index, at in PROOFS:
        sized = ["--size", str(at)] if at is not None else []
        path = proofs / f"{index}-in-{at or LATEST}.tlog-proof"
        path.write_bytes(_cli_output("prove", "--dir", data.path, "--index", str(index), *sized))
        proof_files.append(path)
    consistency_args = []
    for old, new in CONSISTENCY:
        path = proofs / f"consistency-{old}-{new}.txt"
        path.write_bytes(_cli_output("prove", "--dir", data.path, "--from", str(old), "--to", str(new)))
        consistency_args.append(f"{old}:{new}:{path}")
    return ExportedLog(data, tiles, notes, checkpoint_files, proof_files, consistency_args)


def _root_b64(note: bytes) -> str:
    return base64.b64encode(parse_checkpoint(parse_note(note)[0]).root).decode()


def _tile_files(tiles: Path) -> list[str]:
    return sorted(p.relative_to(tiles).as_posix() for p in (tiles / "tile").rglob("*") if p.is_file())


def _copy(exported: ExportedLog, tmp_path: Path) -> Path:
    return Path(shutil.copytree(exported.tiles, tmp_path / "tiles"))


def _assert_rejected(result: GoResult, *fragments: str) -> None:
    assert result.code == 1, f"Go accepted what it should reject: {result.stdout}{result.stderr}"
    assert result.stdout == ""
    assert result.stderr.startswith("FAIL: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


# -- the whole log -------------------------------------------------------------------


def test_export_holds_the_tiles_of_every_checkpoint(exported: ExportedLog) -> None:
    """What the Go run below reads: full tiles, and the partial tiles of each older checkpoint."""
    assert _tile_files(exported.tiles) == [
        "tile/0/000",
        "tile/0/000.p/1",
        "tile/0/000.p/255",
        "tile/0/001",
        "tile/0/001.p/1",
        "tile/0/002.p/188",
        "tile/1/000.p/1",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/000.p/1",
        "tile/entries/000.p/255",
        "tile/entries/001",
        "tile/entries/001.p/1",
        "tile/entries/002.p/188",
    ]
    assert (exported.tiles / "checkpoint").read_bytes() == exported.notes[LATEST]


def test_go_verifies_the_exported_log(go_verifier: Path, exported: ExportedLog) -> None:
    """Checkpoint, root, every entry's inclusion, older checkpoints, tlog-proofs and consistency proofs."""
    args = exported.args()
    args[args.index("-vkey") + 1] = exported.vkey  # the key inline, as a user pastes it
    result = run_go(go_verifier, *args)
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    root = _root_b64(exported.notes[LATEST])
    assert lines[0].startswith(f"ok: {ORIGIN} size {LATEST} root {root} verified by golang.org/x/mod/sumdb: ")
    assert (
        f"{LATEST} entries, {LATEST} inclusion proofs, {len(SIZES)} older checkpoints, "
        f"{len(PROOFS)} tlog-proofs, {len(CONSISTENCY)} consistency proofs, "
        f"{len(_tile_files(exported.tiles))} tile files equal to Go's"
    ) in lines[0]
    assert "0 full-tile fallbacks" in lines[0]


def test_go_samples_inclusion_proofs_of_a_large_log(go_verifier: Path, exported: ExportedLog) -> None:
    result = run_go(go_verifier, *exported.args(extra=False), "-max-proofs", "50")
    assert result.code == 0, result.stderr
    assert f"{LATEST} entries, 50 inclusion proofs, 0 older checkpoints" in result.stdout


# -- tampering is caught -----------------------------------------------------------------


@pytest.mark.parametrize(
    "relative",
    [
        "checkpoint",
        "tile/0/001",  # a full leaf tile of the latest tree
        "tile/0/002.p/188",  # the right edge of the latest tree
        "tile/1/000.p/2",  # level 1: the hashes of whole leaf tiles
        "tile/0/000.p/255",  # only an older checkpoint's tree reads this one
        "tile/entries/001",
        "tile/entries/002.p/188",
        "tile/entries/000.p/255",
    ],
)
def test_go_rejects_a_flipped_byte(go_verifier: Path, exported: ExportedLog, tmp_path: Path, relative: str) -> None:
    tiles = _copy(exported, tmp_path)
    target = tiles / relative
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    _assert_rejected(run_go(go_verifier, *exported.args(tiles)))


def test_go_rejects_a_forged_entry_with_a_matching_leaf_tile(
    go_verifier: Path, exported: ExportedLog, tmp_path: Path
) -> None:
    """Entry 384 and its leaf hash in tile/0/001 forged together, with only 2 sampled proofs.

    x/mod v0.7.0's TileHashReader does not check tile/0/001 against its parent in a
    tree of 700 (Go issue 80744), so only rebuilding the tree from the entries catches it.
    """
    tiles = _copy(exported, tmp_path)
    bundle = tiles / "tile/entries/001"
    data = bundle.read_bytes()
    entries: list[bytes] = []
    while data:
        (length,) = struct.unpack(">H", data[:2])
        entries.append(data[2 : 2 + length])
        data = data[2 + length :]
    assert len(entries) == 256
    forged = entries[128].replace(b'"outcome":"', b'"outcome":"x', 1)
    assert forged != entries[128]
    entries[128] = forged
    bundle.write_bytes(b"".join(struct.pack(">H", len(e)) + e for e in entries))
    leaf_tile = tiles / "tile/0/001"
    hashes = bytearray(leaf_tile.read_bytes())
    hashes[128 * 32 : 129 * 32] = hashlib.sha256(b"\x00" + forged).digest()
    leaf_tile.write_bytes(bytes(hashes))

    result = run_go(go_verifier, *exported.args(tiles, extra=False), "-max-proofs", "2")
    _assert_rejected(result, "of the entries")


def test_go_rejects_a_forked_older_checkpoint(go_verifier: Path, exported: ExportedLog, tmp_path: Path) -> None:
    """A validly signed checkpoint of size 256 that the latest tree does not extend."""
    fork = sign_checkpoint(Checkpoint(ORIGIN, 256, hashlib.sha256(b"fork").digest()), exported.data.signer())
    path = tmp_path / "checkpoint.fork"
    path.write_bytes(fork)
    result = run_go(go_verifier, *exported.args(extra=False), "-old", path)
    _assert_rejected(result, "older checkpoint", "tlog.CheckTree(256 -> 700)")


def test_go_rejects_a_tlog_proof_with_a_wrong_hash(go_verifier: Path, exported: ExportedLog, tmp_path: Path) -> None:
    original = exported.proof_files[PROOFS.index((256, None))].read_bytes()
    head, _, checkpoint = original.partition(b"\n\n")
    lines = head.split(b"\n")
    assert lines[2] == b"index 256"
    lines[3] = base64.b64encode(hashlib.sha256(lines[3]).digest())
    path = tmp_path / "bad.tlog-proof"
    path.write_bytes(b"\n".join(lines) + b"\n\n" + checkpoint)
    result = run_go(go_verifier, *exported.args(extra=False), "-proof", path)
    _assert_rejected(result, "hash 0 is", "Go computes")


def test_go_rejects_a_consistency_proof_with_a_wrong_hash(
    go_verifier: Path, exported: ExportedLog, tmp_path: Path
) -> None:
    spec = exported.consistency_args[CONSISTENCY.index((255, LATEST))]
    hashes = Path(spec.split(":", 2)[2]).read_bytes().splitlines()
    hashes[-1] = base64.b64encode(hashlib.sha256(hashes[-1]).digest())
    path = tmp_path / "bad-consistency.txt"
    path.write_bytes(b"".join(h + b"\n" for h in hashes))
    args = [*exported.args(extra=False), "-old", str(exported.checkpoint_files[SIZES.index(255)])]
    result = run_go(go_verifier, *args, "-consistency", f"255:{LATEST}:{path}")
    _assert_rejected(result, "consistency proof 255 -> 700")


def test_go_rejects_another_key_with_the_same_name(go_verifier: Path, exported: ExportedLog) -> None:
    other = generate_ed25519(ORIGIN).verifier.vkey
    args = exported.args(extra=False)
    args[args.index("-vkey") + 1] = other
    _assert_rejected(run_go(go_verifier, *args), "note.Open")


# -- signed notes, byte for byte ----------------------------------------------------------


def test_go_note_sign_is_byte_identical_to_sealtrail(go_verifier: Path, exported: ExportedLog, tmp_path: Path) -> None:
    """Ed25519 is deterministic: Go's note.Sign with sealtrail's skey gives sealtrail's exact note."""
    signer = exported.data.signer()
    texts = {size: parse_note(note)[0] for size, note in exported.notes.items()}
    fresh = Checkpoint(ORIGIN, 123456789, hashlib.sha256(b"fresh").digest())
    cases = [(texts[size], exported.notes[size]) for size in SIZES]
    cases.append((fresh.text(), sign_checkpoint(fresh, signer)))
    for number, (text, expected) in enumerate(cases):
        text_file = tmp_path / f"text.{number}"
        text_file.write_text(text)
        result = run_go(go_verifier, "sign", "-skey", exported.data.skey, "-text", text_file)
        assert result.code == 0, result.stderr
        assert result.stdout.encode() == expected


def test_go_note_open_accepts_sealtrail_checkpoints(go_verifier: Path, exported: ExportedLog, tmp_path: Path) -> None:
    for size, note in exported.notes.items():
        path = tmp_path / f"checkpoint.{size}"
        path.write_bytes(note)
        result = run_go(go_verifier, "open", "-vkey", exported.vkey, "-note", path)
        assert result.code == 0, result.stderr
        assert result.stdout == f"{ORIGIN}\n{size}\n{_root_b64(note)}\n"


def test_go_note_open_rejects_an_edited_checkpoint(go_verifier: Path, exported: ExportedLog, tmp_path: Path) -> None:
    note = exported.notes[LATEST]
    edited = note.replace(f"\n{LATEST}\n".encode(), f"\n{LATEST + 1}\n".encode(), 1)
    assert edited != note
    path = tmp_path / "checkpoint.edited"
    path.write_bytes(edited)
    result = run_go(go_verifier, "open", "-vkey", exported.data.vkey, "-note", path)
    _assert_rejected(result, "invalid signature")
