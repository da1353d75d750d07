"""`init --pq`, `pubkey --pq`, `verify` and `tiles verify` of a log whose checkpoints carry Ed25519 and ML-DSA-44."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from _support import attacker_connection, devsecops_event, ndjson, one_error_line
from conftest import CliResult
from sealtrail.checkpoint import open_checkpoint, sign_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.mldsa import generate_mldsa44, parse_mldsa_verifier
from sealtrail.note import parse_note, parse_verifier

Cli = Callable[..., CliResult]
ORIGIN = "audit.example.com/pq"


def _pq_log(cli: Cli, path: Path) -> CliResult:
    made = cli("init", "--pq", "--origin", ORIGIN, "--dir", path)
    assert made.code == 0, made.stderr
    appended = cli("append", "--dir", path, stdin=ndjson(devsecops_event(n, "cli-pq") for n in range(4)))
    assert appended.code == 0, appended.stderr
    return made


def test_init_pq_prints_both_vkeys(cli: Cli, tmp_path: Path) -> None:
    made = _pq_log(cli, tmp_path / "log")
    ed_vkey, pq_vkey = made.text.splitlines()
    assert parse_verifier(ed_vkey).name == ORIGIN
    pq = parse_mldsa_verifier(pq_vkey)
    assert pq.name == ORIGIN
    assert (tmp_path / "log" / "log-mldsa.vkey").read_text().strip() == pq_vkey
    shown = cli("pubkey", "--pq", "--dir", tmp_path / "log")
    assert shown.code == 0 and shown.text.strip() == pq_vkey
    assert cli("pubkey", "--dir", tmp_path / "log").text.strip() == ed_vkey


def test_checkpoint_command_prints_both_signature_lines(cli: Cli, tmp_path: Path) -> None:
    _pq_log(cli, tmp_path / "log")
    note = cli("checkpoint", "--dir", tmp_path / "log").stdout
    text, signatures = parse_note(note)
    assert text.splitlines()[:2] == [ORIGIN, "4"]
    assert [s.name for s in signatures] == [ORIGIN, ORIGIN]
    assert len(signatures[1].signature) == 8 + 2420


def test_pubkey_pq_without_a_pq_key(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", "--origin", ORIGIN, "--dir", tmp_path / "log").code == 0
    result = cli("pubkey", "--pq", "--dir", tmp_path / "log")
    assert result.code == 1
    assert "no ML-DSA-44 key" in one_error_line(result.stderr)


def test_verify_checks_the_ml_dsa_signatures(cli: Cli, tmp_path: Path) -> None:
    _pq_log(cli, tmp_path / "log")
    result = cli("verify", "--dir", tmp_path / "log")
    assert result.code == 0, result.stderr
    assert "2 checkpoints verified (each signed with Ed25519 and ML-DSA-44)" in result.text


def test_verify_fails_on_a_checkpoint_without_its_ml_dsa_signature(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "log"
    _pq_log(cli, path)
    directory = DataDir(path)
    conn = attacker_connection(directory.db)
    try:
        (note,) = conn.execute("SELECT note FROM checkpoints WHERE size = 4").fetchone()
        checkpoint = open_checkpoint(bytes(note), ORIGIN, [directory.verifier()]).checkpoint
        conn.execute(
            "UPDATE checkpoints SET note = ? WHERE size = 4", (sign_checkpoint(checkpoint, directory.signer()),)
        )
    finally:
        conn.close()
    result = cli("verify", "--dir", path)
    assert result.code == 1
    line = one_error_line(result.stderr)
    assert "log is NOT intact: checkpoint 4: no signature by the required key" in line


def test_verify_with_a_pinned_ml_dsa_key(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "log"
    made = _pq_log(cli, path)
    pq_vkey = made.text.splitlines()[1]
    pinned_file = tmp_path / "pinned.vkey"
    pinned_file.write_text(pq_vkey + "\n")
    assert cli("verify", "--dir", path, "--mldsa-vkey", pinned_file).code == 0
    impostor = generate_mldsa44(ORIGIN).verifier.vkey
    result = cli("verify", "--dir", path, "--mldsa-vkey", impostor)
    assert result.code == 1
    assert "no signature by the required key" in one_error_line(result.stderr)
    garbage = cli("verify", "--dir", path, "--mldsa-vkey", str(tmp_path / "missing.vkey"))
    assert garbage.code == 1
    assert "neither a vkey nor a file" in one_error_line(garbage.stderr)


def test_tiles_verify_requires_the_ml_dsa_signature_when_given_the_key(cli: Cli, tmp_path: Path) -> None:
    path, out = tmp_path / "log", tmp_path / "tiles"
    made = _pq_log(cli, path)
    ed_vkey, pq_vkey = made.text.splitlines()
    assert cli("tiles", "export", out, "--dir", path).code == 0
    both = cli("tiles", "verify", out, "--vkey", ed_vkey, "--mldsa-vkey", pq_vkey)
    assert both.code == 0, both.stderr
    assert "verified (each checkpoint signed with Ed25519 and ML-DSA-44)" in both.text
    impostor = cli("tiles", "verify", out, "--vkey", ed_vkey, "--mldsa-vkey", generate_mldsa44(ORIGIN).verifier.vkey)
    assert impostor.code == 1
    assert "checkpoint: no signature by the required key" in one_error_line(impostor.stderr)

    directory = DataDir(path)  # the same checkpoint, signed with the Ed25519 key only
    checkpoint = open_checkpoint((out / "checkpoint").read_bytes(), ORIGIN, [directory.verifier()]).checkpoint
    (out / "checkpoint").write_bytes(sign_checkpoint(checkpoint, directory.signer()))
    assert cli("tiles", "verify", out, "--vkey", ed_vkey).code == 0
    stripped = cli("tiles", "verify", out, "--vkey", ed_vkey, "--mldsa-vkey", pq_vkey)
    assert stripped.code == 1
    assert "checkpoint: no signature by the required key" in one_error_line(stripped.stderr)


def test_verify_proof_requires_the_ml_dsa_signature_when_given_the_key(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "log"
    made = _pq_log(cli, path)
    ed_vkey, pq_vkey = made.text.splitlines()
    proof_file = tmp_path / "proof"
    proved = cli("prove", "--dir", path, "--index", "2")
    assert proved.code == 0, proved.stderr
    proof_file.write_bytes(proved.stdout)
    ok = cli("verify-proof", proof_file, "--vkey", ed_vkey, "--mldsa-vkey", pq_vkey)
    assert ok.code == 0, ok.stderr
    impostor = cli(
        "verify-proof", proof_file, "--vkey", ed_vkey, "--mldsa-vkey", generate_mldsa44(ORIGIN).verifier.vkey
    )
    assert impostor.code == 1
    assert "no signature by the required key" in one_error_line(impostor.stderr)

    directory = DataDir(path)  # the proof's checkpoint with its Ed25519 signature only
    text = proved.stdout
    note_start = text.index(ORIGIN.encode() + b"\n")
    note = text[note_start:]
    checkpoint = open_checkpoint(note, ORIGIN, [directory.verifier()]).checkpoint
    proof_file.write_bytes(text[:note_start] + sign_checkpoint(checkpoint, directory.signer()))
    assert cli("verify-proof", proof_file, "--vkey", ed_vkey).code == 0
    stripped = cli("verify-proof", proof_file, "--vkey", ed_vkey, "--mldsa-vkey", pq_vkey)
    assert stripped.code == 1
    assert "no signature by the required key" in one_error_line(stripped.stderr)
