"""`sealtrail witness init | add-log | pubkey | logs` as a user runs them (serve: tests/witness/test_server.py)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from _support import one_error_line
from conftest import CliResult
from sealtrail.cosignature import parse_cosignature_verifier
from sealtrail.merkle import EMPTY_ROOT
from sealtrail.note import b64encode, generate_ed25519, parse_signer
from sealtrail.witness.state import WitnessState

Cli = Callable[..., CliResult]


def test_init_creates_a_private_key_and_prints_the_cosignature_vkey(tmp_path: Path, cli: Cli) -> None:
    directory = tmp_path / "w"
    created = cli("witness", "init", "--name", "witness.example.com/w1", "--dir", directory)
    assert created.code == 0, created.stderr
    verifier = parse_cosignature_verifier(created.text.strip())
    assert verifier.name == "witness.example.com/w1"
    skey = directory / "witness.skey"
    assert stat.S_IMODE(skey.stat().st_mode) == 0o600 and stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert parse_signer(skey.read_text()).public_key == verifier.public_key
    assert (directory / "witness.vkey").read_text() == created.text
    assert cli("witness", "pubkey", "--dir", directory).text == created.text

    again = cli("witness", "init", "--name", "witness.example.com/w1", "--dir", directory)
    assert again.code == 1 and "already exists" in one_error_line(again.stderr)
    assert parse_signer(skey.read_text()).public_key == verifier.public_key


def test_init_refuses_a_bad_name(tmp_path: Path, cli: Cli) -> None:
    refused = cli("witness", "init", "--name", "has space", "--dir", tmp_path / "w")
    assert refused.code == 1 and "witness name" in one_error_line(refused.stderr)
    assert not (tmp_path / "w").exists()


def test_add_log_inline_or_from_a_file_and_list(tmp_path: Path, cli: Cli) -> None:
    directory = tmp_path / "w"
    assert cli("witness", "init", "--name", "w.example/w", "--dir", directory).code == 0
    key, rotated = generate_ed25519("example.com/log"), generate_ed25519("example.com/log")
    added = cli("witness", "add-log", "example.com/log", key.verifier.vkey, "--dir", directory)
    assert added.code == 0 and "now witnessing example.com/log" in added.stderr
    vkey_file = tmp_path / "log.vkey"
    vkey_file.write_text(rotated.verifier.vkey + "\n")
    second = cli("witness", "add-log", "example.com/log", vkey_file, "--dir", directory)
    assert second.code == 0 and "added a key to example.com/log" in second.stderr
    listed = cli("witness", "logs", "--dir", directory)
    assert listed.text.startswith(f"example.com/log  size=0  root={b64encode(EMPTY_ROOT)}  keys=")
    state = WitnessState(directory / "witness.db")
    assert sorted(state.keys("example.com/log") or []) == sorted([key.verifier.vkey, rotated.verifier.vkey])
    state.close()


def test_add_log_refuses_bad_keys_and_a_missing_witness(tmp_path: Path, cli: Cli) -> None:
    directory = tmp_path / "w"
    missing = cli("witness", "add-log", "example.com/log", generate_ed25519("x").verifier.vkey, "--dir", directory)
    assert missing.code == 1 and "witness init" in one_error_line(missing.stderr)
    assert cli("witness", "init", "--name", "w.example/w", "--dir", directory).code == 0
    for bad in ("not-a-key-or-file", "example.com/log+00000000+AQ==", "w.example/w+12345678+BAAA"):
        refused = cli("witness", "add-log", "example.com/log", bad, "--dir", directory)
        assert refused.code == 1, bad
        one_error_line(refused.stderr)
    assert cli("witness", "logs", "--dir", directory).text == ""


def test_the_witness_group_is_listed(cli: Cli) -> None:
    helped = cli("witness", "--help")
    assert helped.code == 0
    for command in ("init", "add-log", "serve", "pubkey", "logs"):
        assert command in helped.text
