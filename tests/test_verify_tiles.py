"""Verifying c2sp.org/tlog-tiles logs: Tessera's golden log, our own exports, --state, HTTP.

`verify_tiles_log` (with fetch.DirectorySource / HttpSource) and `sealtrail
tiles verify` must accept an intact log, ours or not, and reject every
single-byte change to any tile, entry bundle or checkpoint with one line.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from _support import ORIGIN, devsecops_events, one_error_line, rfc6962_leaf, rfc6962_root, static_http, stored_entries
from conftest import CliResult, run_cli
from sealtrail.checkpoint import Checkpoint, open_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.fetch import DirectorySource, HttpSource
from sealtrail.note import b64encode, parse_verifier
from sealtrail.tiles import decode_bundle
from sealtrail.verify import AuditError, TrustedState, verify_tiles_log

Cli = Callable[..., CliResult]

TESSERA_FILES = ["tile/0/000.p/15", "tile/entries/000.p/15", "checkpoint.0", "checkpoint.7", "checkpoint.15"]
NO_PROXY: dict[str, str | None] = {
    name: None for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
}


def _verify_dir(root: Path, vkey: str, state: TrustedState | None = None) -> Checkpoint:
    verifier = parse_verifier(vkey)
    source = DirectorySource(root)
    return verify_tiles_log(
        source.fetch, verifier.name, verifier, extra_checkpoints=source.archived_checkpoints(), state=state
    )


# --- Tessera's log ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tessera(vectors: Path) -> Path:
    return vectors / "tessera-log"


@pytest.fixture(scope="module")
def tessera_vkey(tessera: Path) -> str:
    return (tessera / "log.vkey").read_text().strip()


@pytest.fixture
def tessera_copy(tessera: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "tessera"
    shutil.copytree(tessera, copy, ignore=shutil.ignore_patterns("log.skey"))
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the vectors are read-only
    return copy


def test_cli_verifies_the_tessera_log(tessera: Path, tessera_vkey: str, cli: Cli) -> None:
    result = cli("tiles", "verify", tessera, "--vkey", tessera_vkey)
    assert result.code == 0, result.stderr
    note = (tessera / "checkpoint.15").read_bytes()
    root = open_checkpoint(note, "example.com/log/testdata", [parse_verifier(tessera_vkey)]).checkpoint.root
    assert result.text.strip() == f"ok: example.com/log/testdata size 15 root {b64encode(root)} verified"


def test_library_verifies_the_tessera_log(tessera: Path, tessera_vkey: str) -> None:
    latest = _verify_dir(tessera, tessera_vkey)
    assert latest.size == 15
    bundle = (tessera / "tile/entries/000.p/15").read_bytes()
    leaves = [rfc6962_leaf(entry) for entry in decode_bundle(bundle, 15)]
    assert latest.root == rfc6962_root(leaves)
    assert (tessera / "tile/0/000.p/15").read_bytes() == b"".join(leaves)


def _mutations(byte: int) -> set[int]:
    return {byte ^ 0x01, byte ^ 0xFF, byte ^ 0x20} - {byte}


@pytest.mark.parametrize("name", TESSERA_FILES)
def test_every_single_byte_change_is_rejected(name: str, tessera_copy: Path, tessera_vkey: str) -> None:
    path = tessera_copy / name
    original = path.read_bytes()
    assert _verify_dir(tessera_copy, tessera_vkey).size == 15
    wrong: list[str] = []
    tried = 0
    for pos in range(len(original)):
        for value in sorted(_mutations(original[pos])):
            data = bytearray(original)
            data[pos] = value
            path.write_bytes(bytes(data))
            tried += 1
            try:
                _verify_dir(tessera_copy, tessera_vkey)
            except AuditError as exc:
                message = str(exc)
                if not message or "\n" in message:
                    wrong.append(f"byte {pos} -> {value:#04x}: AuditError is not one line: {message!r}")
            except Exception as exc:
                wrong.append(f"byte {pos} -> {value:#04x}: {type(exc).__name__}: {exc}")
            else:
                wrong.append(f"byte {pos} -> {value:#04x}: still verifies")
    path.write_bytes(original)
    assert tried >= 2 * len(original)
    assert not wrong, f"{len(wrong)} of {tried} changes to {name} mishandled, e.g. {wrong[:5]}"
    assert _verify_dir(tessera_copy, tessera_vkey).size == 15


SAMPLES = [
    ("tile/0/000.p/15", 0),
    ("tile/0/000.p/15", 479),
    ("tile/entries/000.p/15", 1),
    ("tile/entries/000.p/15", 50),
    ("checkpoint.15", 26),  # the size line
    ("checkpoint.15", 120),  # inside the signature
    ("checkpoint.7", 0),
    ("checkpoint.0", -1),  # the final newline
]


@pytest.mark.parametrize("name, pos", SAMPLES)
def test_cli_rejects_a_changed_byte(name: str, pos: int, tessera_copy: Path, tessera_vkey: str, cli: Cli) -> None:
    path = tessera_copy / name
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))
    result = cli("tiles", "verify", tessera_copy, "--vkey", tessera_vkey)
    assert result.code == 1, result.text
    one_error_line(result.stderr)
    assert result.stdout == b""


@pytest.mark.parametrize("name", ["tile/0/000.p/15", "tile/entries/000.p/15"])
def test_missing_or_truncated_tiles_are_rejected(name: str, tessera_copy: Path, tessera_vkey: str) -> None:
    path = tessera_copy / name
    original = path.read_bytes()
    for data in (original[:-1], original[:-32], original + b"\x00", b""):
        path.write_bytes(data)
        with pytest.raises(AuditError):
            _verify_dir(tessera_copy, tessera_vkey)
    path.unlink()
    with pytest.raises(AuditError, match="missing"):
        _verify_dir(tessera_copy, tessera_vkey)


def test_latest_checkpoint_older_than_an_archived_one_is_a_rollback(tessera_copy: Path, tessera_vkey: str) -> None:
    shutil.copy(tessera_copy / "checkpoint.15", tessera_copy / "checkpoint")
    assert _verify_dir(tessera_copy, tessera_vkey).size == 15
    shutil.copy(tessera_copy / "checkpoint.7", tessera_copy / "checkpoint")
    with pytest.raises(AuditError, match="roll"):
        _verify_dir(tessera_copy, tessera_vkey)


def test_another_logs_key_is_rejected(tessera: Path, cli: Cli, data_dir: DataDir) -> None:
    result = cli("tiles", "verify", tessera, "--vkey", data_dir.vkey)
    assert result.code == 1
    one_error_line(result.stderr)


# --- our own log, exported ---------------------------------------------------------------


def _export(directory: DataDir, out: Path) -> Path:
    result = run_cli("tiles", "export", out, "--dir", directory.path)
    assert result.code == 0, result.stderr
    return out


def _append(directory: DataDir, batches: list[int], tag: str) -> None:
    with directory.open_log(checkpoint_interval=0) as log:
        start = log.size
        for count in batches:
            log.append(devsecops_events(start, count, tag))
            start += count


class Exports:
    """Log A at size 100, then 360; log B forked from A at 100, then 360 and 370 (same key)."""

    def __init__(self, root: Path) -> None:
        self.a = DataDir(root / "a")
        self.a.init(ORIGIN)
        _append(self.a, [60, 40], "a")
        self.old = _export(self.a, root / "export-a-100")
        self.b = DataDir(root / "b")
        shutil.copytree(self.a.path, self.b.path)
        _append(self.a, [200, 60], "a-more")
        self.new = _export(self.a, root / "export-a-360")
        _append(self.b, [260], "b-fork")
        self.fork = _export(self.b, root / "export-b-360")
        _append(self.b, [10], "b-fork-more")
        self.fork_bigger = _export(self.b, root / "export-b-370")
        self.vkey = self.a.vkey.read_text().strip()


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    return Exports(tmp_path_factory.mktemp("exports"))


def test_export_then_verify(exports: Exports, cli: Cli) -> None:
    result = cli("tiles", "verify", exports.new, "--vkey", exports.vkey)
    assert result.code == 0, result.stderr
    leaves = [rfc6962_leaf(entry) for _, entry in stored_entries(exports.a.db)]
    assert result.text.strip() == f"ok: {ORIGIN} size 360 root {b64encode(rfc6962_root(leaves))} verified"
    # the exported checkpoint is the log's latest signed note
    store = exports.a.store()
    try:
        latest = store.latest_checkpoint()
    finally:
        store.close()
    assert latest is not None and (exports.new / "checkpoint").read_bytes() == latest[1]
    # and the tiles are the standard layout
    for path in ("tile/0/000", "tile/0/001.p/104", "tile/1/000.p/1", "tile/entries/000", "tile/entries/001.p/104"):
        assert (exports.new / path).is_file(), path


def test_exported_log_verifies_in_process_and_by_file_vkey(exports: Exports, cli: Cli) -> None:
    assert _verify_dir(exports.old, exports.vkey).size == 100
    assert _verify_dir(exports.fork_bigger, exports.vkey).size == 370
    assert cli("tiles", "verify", exports.old, "--vkey", exports.a.vkey).code == 0


def test_tampered_export_is_rejected(exports: Exports, tmp_path: Path, cli: Cli) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exports.new, copy)
    bundle = copy / "tile/entries/001.p/104"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    bundle.write_bytes(bytes(data))
    result = cli("tiles", "verify", copy, "--vkey", exports.vkey)
    assert result.code == 1
    one_error_line(result.stderr)


def test_state_moves_forward(exports: Exports, tmp_path: Path, cli: Cli) -> None:
    state = tmp_path / "state.json"
    assert cli("tiles", "verify", exports.old, "--vkey", exports.vkey, "--state", state).code == 0
    assert json.loads(state.read_text())["size"] == 100
    result = cli("tiles", "verify", exports.new, "--vkey", exports.vkey, "--state", state)
    assert result.code == 0, result.stderr
    saved = json.loads(state.read_text())
    assert (saved["origin"], saved["size"]) == (ORIGIN, 360)


def _state_after(cli: Cli, export: Path, vkey: str, state: Path) -> dict[str, Any]:
    result = cli("tiles", "verify", export, "--vkey", vkey, "--state", state)
    assert result.code == 0, result.stderr
    saved: dict[str, Any] = json.loads(state.read_text())
    return saved


def test_state_detects_a_rollback(exports: Exports, tmp_path: Path, cli: Cli) -> None:
    state = tmp_path / "state.json"
    saved = _state_after(cli, exports.new, exports.vkey, state)
    before = state.read_bytes()
    result = cli("tiles", "verify", exports.old, "--vkey", exports.vkey, "--state", state)
    assert result.code == 1
    assert "rollback" in one_error_line(result.stderr).lower()
    assert state.read_bytes() == before
    assert saved["size"] == 360


def test_state_detects_a_fork_of_the_same_size(exports: Exports, tmp_path: Path, cli: Cli) -> None:
    state = tmp_path / "state.json"
    _state_after(cli, exports.new, exports.vkey, state)
    before = state.read_bytes()
    assert _verify_dir(exports.fork, exports.vkey).size == 360  # a validly signed log on its own
    result = cli("tiles", "verify", exports.fork, "--vkey", exports.vkey, "--state", state)
    assert result.code == 1
    assert "360" in one_error_line(result.stderr)
    assert state.read_bytes() == before


def test_state_detects_a_fork_that_grew(exports: Exports, tmp_path: Path, cli: Cli) -> None:
    state = tmp_path / "state.json"
    _state_after(cli, exports.new, exports.vkey, state)
    before = state.read_bytes()
    result = cli("tiles", "verify", exports.fork_bigger, "--vkey", exports.vkey, "--state", state)
    assert result.code == 1
    one_error_line(result.stderr)
    assert state.read_bytes() == before


def test_a_state_file_of_another_log_or_with_a_forged_checkpoint_is_refused(
    exports: Exports, tmp_path: Path, cli: Cli
) -> None:
    state = tmp_path / "state.json"
    saved = _state_after(cli, exports.new, exports.vkey, state)
    assert saved["checkpoint"].encode() == (exports.new / "checkpoint").read_bytes()  # the one verified
    for changed in ({"origin": "other.example/log"}, {"size": saved["size"] - 1}):
        state.write_text(json.dumps(saved | changed))
        before = state.read_bytes()
        result = cli("tiles", "verify", exports.new, "--vkey", exports.vkey, "--state", state)
        assert result.code == 1
        assert "state file" in one_error_line(result.stderr)
        assert state.read_bytes() == before


def test_library_state_checks(exports: Exports) -> None:
    new = _verify_dir(exports.new, exports.vkey)
    fork = _verify_dir(exports.fork, exports.vkey)
    old = _verify_dir(exports.old, exports.vkey)
    assert new.size == fork.size and new.root != fork.root
    seen = TrustedState(ORIGIN, new.size, new.root)
    assert _verify_dir(exports.new, exports.vkey, seen) == new
    assert _verify_dir(exports.new, exports.vkey, TrustedState(ORIGIN, old.size, old.root)) == new
    with pytest.raises(AuditError, match="rollback"):
        _verify_dir(exports.old, exports.vkey, seen)
    with pytest.raises(AuditError):
        _verify_dir(exports.fork, exports.vkey, seen)
    with pytest.raises(AuditError):
        _verify_dir(exports.fork_bigger, exports.vkey, seen)
    with pytest.raises(AuditError):
        _verify_dir(exports.new, exports.vkey, TrustedState("other.example/log", old.size, old.root))


# --- over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """Serve directories on loopback until the test ends; returns each one's URL prefix."""
    with ExitStack() as servers:
        yield lambda directory: servers.enter_context(static_http(directory)) + "/"


def test_cli_verifies_over_http(exports: Exports, serve: Callable[[Path], str], cli: Cli) -> None:
    url = serve(exports.new)
    result = cli("tiles", "verify", url, "--vkey", exports.vkey, env=NO_PROXY)
    assert result.code == 0, result.stderr
    assert result.text.startswith(f"ok: {ORIGIN} size 360 ")


def test_cli_rejects_a_tampered_log_over_http(
    exports: Exports, tmp_path: Path, serve: Callable[[Path], str], cli: Cli
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exports.new, copy)
    tile = copy / "tile/0/000"
    data = bytearray(tile.read_bytes())
    data[4000] ^= 0x01
    tile.write_bytes(bytes(data))
    result = cli("tiles", "verify", serve(copy), "--vkey", exports.vkey, env=NO_PROXY)
    assert result.code == 1
    one_error_line(result.stderr)


def test_http_source_in_process(tessera_copy: Path, tessera_vkey: str, serve: Callable[[Path], str]) -> None:
    url = serve(tessera_copy)
    verifier = parse_verifier(tessera_vkey)
    source = HttpSource(url)
    try:
        archived = [(tessera_copy / f"checkpoint.{n}").read_bytes() for n in (0, 7, 15)]
        latest = verify_tiles_log(source.fetch, verifier.name, verifier, extra_checkpoints=archived)
        assert latest.size == 15
        assert source.fetch("checkpoint") is None  # a 404 is "absent"
        (tessera_copy / "tile/entries/000.p/15").unlink()
        with pytest.raises(AuditError, match="missing"):
            verify_tiles_log(source.fetch, verifier.name, verifier, extra_checkpoints=archived)
    finally:
        source.close()
