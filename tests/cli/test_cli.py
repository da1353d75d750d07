"""The `sealtrail` command line, run for real in a subprocess (python -m sealtrail)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from _support import (
    EXAMPLES,
    ORIGIN,
    checkpoint_sizes,
    count_rows,
    devsecops_event,
    example_events,
    ndjson,
    one_error_line,
    receipts_json,
    stored_entries,
)
from conftest import CliResult, run_cli
from sealtrail.checkpoint import open_checkpoint
from sealtrail.merkle import ProofError, verify_consistency
from sealtrail.note import b64decode_strict, generate_ed25519, parse_verifier

Cli = Callable[..., CliResult]
EMPTY_ROOT = hashlib.sha256(b"").digest()


def _leaf_b64(entry: bytes) -> str:
    return base64.b64encode(hashlib.sha256(b"\x00" + entry).digest()).decode()


def _init(directory: Path, origin: str = ORIGIN) -> str:
    result = run_cli("init", "--dir", directory, "--origin", origin)
    assert result.code == 0, result.stderr
    return result.text.strip()


def _checkpoint(directory: Path) -> bytes:
    result = run_cli("checkpoint", "--dir", directory)
    assert result.code == 0, result.stderr
    return result.stdout


def _db_state(directory: Path) -> tuple[int, list[int], bytes]:
    """(events, checkpoint sizes, latest checkpoint note) straight from the database."""
    db = directory / "log.db"
    return count_rows(db, "events"), checkpoint_sizes(db), _latest_note(db)


def _latest_note(db: Path) -> bytes:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return bytes(conn.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log holding the example DevSecOps events, appended through the CLI."""
    directory = tmp_path_factory.mktemp("cli") / "log"
    _init(directory)
    result = run_cli("append", "--dir", directory, EXAMPLES)
    assert result.code == 0, result.stderr
    return directory


@pytest.fixture
def log_dir(populated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(populated, tmp_path / "log"))


# --- init ---------------------------------------------------------------------------------


def test_init_prints_a_vkey_that_verifies_the_checkpoint(tmp_path: Path, cli: Cli) -> None:
    directory = tmp_path / "log"
    result = cli("init", "--dir", directory, "--origin", ORIGIN)
    assert result.code == 0, result.stderr
    lines = result.text.splitlines()
    assert len(lines) == 1
    vkey = lines[0]
    verifier = parse_verifier(vkey)
    assert verifier.name == ORIGIN
    assert (directory / "log.vkey").read_text().strip() == vkey
    assert cli("pubkey", "--dir", directory).text.strip() == vkey
    note = _checkpoint(directory)
    signed = open_checkpoint(note, ORIGIN, [verifier])
    assert (signed.checkpoint.size, signed.checkpoint.root) == (0, EMPTY_ROOT)
    assert note.startswith(f"{ORIGIN}\n0\n".encode())


def test_log_skey_is_private(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    _init(directory)
    assert stat.S_IMODE((directory / "log.skey").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0


def test_init_twice_refuses(tmp_path: Path, cli: Cli) -> None:
    directory = tmp_path / "log"
    _init(directory)
    files = {name: (directory / name).read_bytes() for name in ("log.db", "log.skey", "log.vkey")}
    for origin in (ORIGIN, "other.example/log"):
        result = cli("init", "--dir", directory, "--origin", origin)
        assert result.code != 0
        one_error_line(result.stderr)
        assert result.stdout == b""
    assert {name: (directory / name).read_bytes() for name in files} == files


@pytest.mark.parametrize("origin", ["", "has space/log", "a+b.example/log"])
def test_init_rejects_a_bad_origin(origin: str, tmp_path: Path, cli: Cli) -> None:
    result = cli("init", "--dir", tmp_path / "log", "--origin", origin)
    assert result.code != 0
    one_error_line(result.stderr)
    assert not (tmp_path / "log" / "log.skey").exists()


# --- append -----------------------------------------------------------------------------------


def test_append_prints_one_receipt_per_event(tmp_path: Path, cli: Cli) -> None:
    directory = tmp_path / "log"
    _init(directory)
    events = example_events()
    result = cli("append", "--dir", directory, EXAMPLES)
    assert result.code == 0, result.stderr
    receipts = receipts_json(result.stdout)
    assert len(receipts) == len(events) == len(result.stdout.splitlines())
    assert [r["index"] for r in receipts] == list(range(len(events)))
    assert [r["id"] for r in receipts] == [e["id"] for e in events]
    assert all(set(r) == {"index", "leaf_hash", "id"} for r in receipts)
    stored = dict(stored_entries(directory / "log.db"))
    for receipt in receipts:
        assert receipt["leaf_hash"] == _leaf_b64(stored[receipt["index"]])
    # the entry command prints exactly the bytes that were hashed
    for index in (0, len(events) // 2, len(events) - 1):
        entry = cli("entry", "--dir", directory, "--index", index)
        assert entry.code == 0, entry.stderr
        assert receipts[index]["leaf_hash"] == _leaf_b64(entry.stdout)
        assert orjson.loads(entry.stdout)["id"] == events[index]["id"]
    note = _checkpoint(directory)
    assert open_checkpoint(note, ORIGIN, [parse_verifier(directory.joinpath("log.vkey").read_text())])
    assert note.split(b"\n")[1] == str(len(events)).encode()


def test_append_from_stdin_with_default_source(log_dir: Path, cli: Cli) -> None:
    size = count_rows(log_dir / "log.db", "events")
    events = [{"kind": "deploy", "action": "helm.upgrade", "outcome": "success"}, {"kind": "config.change"}]
    result = cli("append", "--dir", log_dir, "--source", "api:deploy-bot", "-", stdin=ndjson(events))
    assert result.code == 0, result.stderr
    receipts = receipts_json(result.stdout)
    assert [r["index"] for r in receipts] == [size, size + 1]
    entry = orjson.loads(dict(stored_entries(log_dir / "log.db"))[size])
    assert entry["source"] == {"type": "api", "id": "deploy-bot"}
    assert entry["id"] == receipts[0]["id"]


def test_append_twice_is_deduplicated(log_dir: Path, cli: Cli) -> None:
    before = _db_state(log_dir)
    result = cli("append", "--dir", log_dir, EXAMPLES)
    assert result.code == 0, result.stderr
    receipts = receipts_json(result.stdout)
    assert [r["index"] for r in receipts] == list(range(len(receipts)))
    assert all(r["duplicate"] is True for r in receipts)
    assert _db_state(log_dir) == before


def test_oversized_raw_is_accepted_out_of_line(log_dir: Path, cli: Cli) -> None:
    event = devsecops_event(3, "big")
    event["raw"] = {"log": "x" * 100_000}
    result = cli("append", "--dir", log_dir, "-", stdin=ndjson([event]))
    assert result.code == 0, result.stderr
    (receipt,) = receipts_json(result.stdout)
    entry = dict(stored_entries(log_dir / "log.db"))[receipt["index"]]
    assert len(entry) < 65_536
    assert set(orjson.loads(entry)["raw"]) == {"digest", "size"}


def _oversized() -> bytes:
    event = devsecops_event(0, "huge")
    event["attrs"]["diff"] = "+" * 70_000
    return ndjson([event])


BAD_INPUT: dict[str, tuple[list[str], bytes]] = {
    "malformed JSON line": ([], ndjson([devsecops_event(0, "ok")]) + b'{"kind": "deploy",\n' + ndjson([{"kind": "x"}])),
    "not an object": ([], b"[1, 2, 3]\n"),
    "unknown field": ([], ndjson([dict(devsecops_event(1, "ok"), severity="high")])),
    "unknown nested field": ([], ndjson([{"kind": "deploy", "actor": {"name": "x", "email": "x@example.com"}}])),
    "oversized event without raw": ([], _oversized()),
    "source type unknown": ([], ndjson([{"kind": "deploy", "source": {"type": "svn", "id": "repo"}}])),
    "source not an object": ([], ndjson([{"kind": "deploy", "source": "github:acme"}])),
    "source without id": ([], ndjson([{"kind": "deploy", "source": {"type": "github"}}])),
    "--source without colon": (["--source", "github"], ndjson([{"kind": "deploy"}])),
    "--source with unknown type": (["--source", "svn:repo"], ndjson([{"kind": "deploy"}])),
    "bad kind": ([], ndjson([{"kind": "Deploy Now"}])),
    "bad time": ([], ndjson([{"kind": "deploy", "time": "yesterday"}])),
    "received set by the client": ([], ndjson([{"kind": "deploy", "received": "2026-01-01T00:00:00Z"}])),
    "bad ip": ([], ndjson([{"kind": "auth.failure", "actor": {"ip": "999.1.1.1"}}])),
}


@pytest.mark.parametrize("options, data", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_writes_nothing(options: list[str], data: bytes, log_dir: Path, cli: Cli) -> None:
    before = _db_state(log_dir)  # includes the latest signed checkpoint note
    source = log_dir.parent / "events.ndjson"
    source.write_bytes(data)
    result = cli("append", "--dir", log_dir, *options, source)
    assert result.code != 0
    one_error_line(result.stderr)
    assert result.stdout == b""
    assert _db_state(log_dir) == before


def test_bad_input_on_stdin_writes_nothing(log_dir: Path, cli: Cli) -> None:
    before = _db_state(log_dir)
    checkpoint = _checkpoint(log_dir)
    result = cli("append", "--dir", log_dir, "-", stdin=BAD_INPUT["malformed JSON line"][1])
    assert result.code != 0
    assert "line 2" in one_error_line(result.stderr)
    assert result.stdout == b""
    assert _db_state(log_dir) == before
    assert _checkpoint(log_dir) == checkpoint


def test_missing_input_file(log_dir: Path, cli: Cli) -> None:
    before = _db_state(log_dir)
    result = cli("append", "--dir", log_dir, log_dir / "nope.ndjson")
    assert result.code != 0
    one_error_line(result.stderr)
    assert _db_state(log_dir) == before


MISSING_LOG_COMMANDS = [
    ["verify"],
    ["append", str(EXAMPLES)],
    ["checkpoint"],
    ["prove", "--index", "0"],
    ["prove", "--from", "1", "--to", "2"],
    ["entry", "--index", "0"],
    ["pubkey"],
]


@pytest.mark.parametrize("command", MISSING_LOG_COMMANDS, ids=[" ".join(c[:2]) for c in MISSING_LOG_COMMANDS])
def test_missing_log_is_one_line(command: list[str], tmp_path: Path, cli: Cli) -> None:
    missing = tmp_path / "nowhere"
    result = cli(*command, "--dir", missing)
    assert result.code != 0
    one_error_line(result.stderr)
    assert result.stdout == b""
    assert not missing.exists()


def test_missing_log_for_tiles_export(tmp_path: Path, cli: Cli) -> None:
    result = cli("tiles", "export", tmp_path / "out", "--dir", tmp_path / "nowhere")
    assert result.code != 0
    one_error_line(result.stderr)
    assert not (tmp_path / "nowhere").exists()


# --- prove / verify-proof --------------------------------------------------------------------


@pytest.fixture
def proof_files(log_dir: Path) -> tuple[Path, Path, Path, Path]:
    """(proof for index 3, entry 3, entry 4, vkey file)."""
    proof = log_dir.parent / "proof.txt"
    result = run_cli("prove", "--dir", log_dir, "--index", "3")
    assert result.code == 0, result.stderr
    proof.write_bytes(result.stdout)
    entries = []
    for index in (3, 4):
        entry = run_cli("entry", "--dir", log_dir, "--index", str(index))
        assert entry.code == 0, entry.stderr
        path = log_dir.parent / f"entry{index}.json"
        path.write_bytes(entry.stdout)
        entries.append(path)
    return proof, entries[0], entries[1], log_dir / "log.vkey"


def test_prove_then_verify_proof(proof_files: tuple[Path, Path, Path, Path], log_dir: Path, cli: Cli) -> None:
    proof, entry, _, vkey = proof_files
    assert proof.read_bytes().startswith(b"c2sp.org/tlog-proof@v1\n")
    size = count_rows(log_dir / "log.db", "events")
    for key in (str(vkey), vkey.read_text().strip()):
        result = cli("verify-proof", proof, "--vkey", key, "--entry", entry)
        assert result.code == 0, result.stderr
        assert result.text.strip() == f"ok: entry is at index 3 of {ORIGIN}, size {size}"
    without_entry = cli("verify-proof", proof, "--vkey", vkey)
    assert without_entry.code == 0, without_entry.stderr


def test_verify_proof_rejects_another_entry(proof_files: tuple[Path, Path, Path, Path], cli: Cli) -> None:
    proof, _, other, vkey = proof_files
    result = cli("verify-proof", proof, "--vkey", vkey, "--entry", other)
    assert result.code != 0
    one_error_line(result.stderr)
    assert result.stdout == b""


def test_verify_proof_rejects_another_key(proof_files: tuple[Path, Path, Path, Path], cli: Cli) -> None:
    proof, entry, _, _ = proof_files
    for name in (ORIGIN, "other.example/log"):
        result = cli("verify-proof", proof, "--vkey", generate_ed25519(name).verifier.vkey, "--entry", entry)
        assert result.code != 0
        one_error_line(result.stderr)


def _tamper_index(text: str) -> str:
    return text.replace("\nindex 3\n", "\nindex 2\n", 1)


def _tamper_hash(text: str) -> str:
    lines = text.split("\n")
    first_hash = next(i for i, line in enumerate(lines) if line.startswith("index ")) + 1
    flipped = "A" if lines[first_hash][0] != "A" else "B"
    lines[first_hash] = flipped + lines[first_hash][1:]
    return "\n".join(lines)


def _drop_hash(text: str) -> str:
    lines = text.split("\n")
    first_hash = next(i for i, line in enumerate(lines) if line.startswith("index ")) + 1
    del lines[first_hash]
    return "\n".join(lines)


def _tamper_extra(text: str) -> str:
    lines = text.split("\n")
    lines[1] = "extra " + base64.b64encode(bytes(32)).decode()
    return "\n".join(lines)


def _tamper_checkpoint_size(text: str) -> str:
    head, _, note = text.partition("\n\n")
    origin, size, rest = note.split("\n", 2)
    return f"{head}\n\n{origin}\n{int(size) + 1}\n{rest}"


def _tamper_header(text: str) -> str:
    return text.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1)


@pytest.mark.parametrize(
    "tamper", [_tamper_index, _tamper_hash, _drop_hash, _tamper_extra, _tamper_checkpoint_size, _tamper_header]
)
def test_verify_proof_rejects_a_tampered_proof(
    tamper: Callable[[str], str], proof_files: tuple[Path, Path, Path, Path], cli: Cli
) -> None:
    proof, entry, _, vkey = proof_files
    original = proof.read_text()
    changed = tamper(original)
    assert changed != original
    proof.write_text(changed)
    # with the entry; and without it, where the proof's own leaf hash is what gets checked
    for extra in (
        (["--entry", str(entry)], []) if tamper in (_tamper_hash, _tamper_extra) else (["--entry", str(entry)],)
    ):
        result = cli("verify-proof", proof, "--vkey", vkey, *extra)
        assert result.code != 0, (tamper.__name__, extra, result.text)
        one_error_line(result.stderr)


def test_prove_consistency_between_two_checkpoints(tmp_path: Path, cli: Cli) -> None:
    directory = tmp_path / "log"
    verifier = parse_verifier(_init(directory))
    roots = {}
    for count, tag in ((13, "first"), (40, "second")):
        events = [devsecops_event(n, tag) for n in range(count)]
        assert cli("append", "--dir", directory, "-", stdin=ndjson(events)).code == 0
        checkpoint = open_checkpoint(_checkpoint(directory), ORIGIN, [verifier]).checkpoint
        roots[checkpoint.size] = checkpoint.root
    assert sorted(roots) == [13, 53]
    result = cli("prove", "--dir", directory, "--from", "13", "--to", "53")
    assert result.code == 0, result.stderr
    proof = [b64decode_strict(line) for line in result.text.splitlines()]
    assert proof
    verify_consistency(13, 53, proof, roots[13], roots[53])
    with pytest.raises(ProofError):
        verify_consistency(13, 53, proof, roots[53], roots[13])
    with pytest.raises(ProofError):
        verify_consistency(13, 53, proof[:-1], roots[13], roots[53])
    same = cli("prove", "--dir", directory, "--from", "53", "--to", "53")
    assert same.code == 0 and same.stdout == b""
    beyond = cli("prove", "--dir", directory, "--from", "13", "--to", "54")
    assert beyond.code != 0
    one_error_line(beyond.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["--index", "0", "--from", "1", "--to", "2"],
        [],
        ["--from", "1"],
        ["--index", "999"],
        ["--index", "0", "--size", "5"],
    ],
)
def test_prove_usage_errors(args: list[str], log_dir: Path, cli: Cli) -> None:
    result = cli("prove", "--dir", log_dir, *args)
    assert result.code != 0
    one_error_line(result.stderr)
    assert result.stdout == b""


# --- --dir, $SEALTRAIL_DIR, ./sealtrail-data --------------------------------------------------


def test_dir_defaults_to_sealtrail_data_in_cwd(tmp_path: Path, cli: Cli) -> None:
    result = cli("init", "--origin", ORIGIN, cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert (tmp_path / "sealtrail-data" / "log.db").is_file()
    assert cli("append", EXAMPLES, cwd=tmp_path).code == 0
    verify = cli("verify", cwd=tmp_path)
    assert verify.code == 0, verify.stderr
    assert verify.text.startswith(f"ok: {len(example_events())} entries")


def test_dir_defaults_to_env(tmp_path: Path, cli: Cli) -> None:
    env_dir = tmp_path / "from-env"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {"SEALTRAIL_DIR": str(env_dir)}
    result = cli("init", "--origin", ORIGIN, cwd=cwd, env=env)
    assert result.code == 0, result.stderr
    assert (env_dir / "log.db").is_file()
    assert not (cwd / "sealtrail-data").exists()
    assert cli("append", EXAMPLES, cwd=cwd, env=env).code == 0
    assert count_rows(env_dir / "log.db", "events") == len(example_events())


def test_dir_precedence(tmp_path: Path, cli: Cli) -> None:
    in_cwd = _init(tmp_path / "sealtrail-data", "cwd.example/log")
    in_env = _init(tmp_path / "env-log", "env.example/log")
    flagged = _init(tmp_path / "flag-log", "flag.example/log")
    env = {"SEALTRAIL_DIR": str(tmp_path / "env-log")}
    assert cli("pubkey", cwd=tmp_path).text.strip() == in_cwd
    assert cli("pubkey", cwd=tmp_path, env=env).text.strip() == in_env
    assert cli("pubkey", "--dir", tmp_path / "flag-log", cwd=tmp_path, env=env).text.strip() == flagged


# --- verify ---------------------------------------------------------------------------------


def test_verify_ok_and_with_another_logs_key(log_dir: Path, tmp_path: Path, cli: Cli) -> None:
    ok = cli("verify", "--dir", log_dir)
    assert ok.code == 0, ok.stderr
    assert ok.text.startswith(f"ok: {len(example_events())} entries")
    other = _init(tmp_path / "other")  # same origin, another key
    result = cli("verify", "--dir", log_dir, "--vkey", other)
    assert result.code == 1
    one_error_line(result.stderr)
    by_file = cli("verify", "--dir", log_dir, "--vkey", tmp_path / "other" / "log.vkey")
    assert by_file.code == 1
    one_error_line(by_file.stderr)
