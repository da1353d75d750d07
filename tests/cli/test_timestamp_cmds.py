"""`sealtrail timestamp get` and `sealtrail timestamp verify`, with replies from a real `openssl ts -reply` TSA."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from rfc3161_client import decode_timestamp_response

from _support import devsecops_events, one_error_line
from _tsa_fixtures import OpensslTsa, Pki, other_pki, pki, tsa  # noqa: F401  (fixtures)
from conftest import CliResult
from sealtrail.datadir import DataDir
from sealtrail.note import parse_note
from sealtrail.timestamp import load_trust, timestamp_request, verify_timestamp

Cli = Callable[..., CliResult]


@dataclass(frozen=True)
class Stamped:
    directory: DataDir
    sizes: tuple[int, ...]


@pytest.fixture
def stamped(data_dir: DataDir, tsa: OpensslTsa, pki: Pki) -> Stamped:  # noqa: F811
    """A log with checkpoints 0 and 3, each time-stamped by the test TSA (as `serve` does)."""
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 3, "cli-ts"))
        log.wait_for_checkpoint(3, timeout=10)
    store = data_dir.store()
    try:
        for size in (0, 3):
            note = store.checkpoint_at(size)
            assert note is not None
            text, _ = parse_note(note)
            request = timestamp_request(text)
            info = verify_timestamp(tsa.reply(request.as_bytes()), text, load_trust(pki.ca_cert), nonce=request.nonce)
            assert store.add_timestamp(size, info.reply, info.gen_time.isoformat())
    finally:
        store.close()
    return Stamped(data_dir, (0, 3))


def _get(cli: Cli, stamped: Stamped, tmp_path: Path, size: int | None = None) -> tuple[Path, Path]:
    reply, checkpoint = tmp_path / f"cp-{size}.tsr", tmp_path / f"cp-{size}.note"
    sized = [] if size is None else ["--size", str(size)]
    args = ["timestamp", "get", "--dir", stamped.directory.path, *sized, "-o", reply, "--checkpoint-out", checkpoint]
    result = cli(*args)
    assert result.code == 0, result.stderr
    return reply, checkpoint


def test_get_and_verify(cli: Cli, stamped: Stamped, pki: Pki, tmp_path: Path) -> None:  # noqa: F811
    reply, checkpoint = _get(cli, stamped, tmp_path)  # the latest time-stamped: 3
    assert parse_note(checkpoint.read_bytes())[0].splitlines()[1] == "3"
    result = cli(
        "timestamp", "verify", reply, "--checkpoint", checkpoint, "--ca", pki.ca_cert, "--vkey", stamped.directory.vkey
    )
    assert result.code == 0, result.stderr
    line = result.text.strip()
    assert line.startswith("ok: test.sealtrail.local/log size 3 root ")
    assert "(log signature verified) existed at 20" in line
    assert "time-stamped by CN=Test TSA" in line


def test_get_writes_the_reply_to_stdout(cli: Cli, stamped: Stamped) -> None:
    result = cli("timestamp", "get", "--dir", stamped.directory.path, "--size", "0")
    assert result.code == 0, result.stderr
    assert decode_timestamp_response(result.stdout).status == 0
    store = stamped.directory.store()
    try:
        assert result.stdout == store.timestamp(0)
    finally:
        store.close()


def test_verify_accepts_a_bare_token_and_the_checkpoint_text(
    cli: Cli,
    stamped: Stamped,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    reply, checkpoint = _get(cli, stamped, tmp_path, 0)
    token = tmp_path / "cp.token"
    token.write_bytes(decode_timestamp_response(reply.read_bytes()).time_stamp_token())
    text = tmp_path / "cp.txt"
    text.write_text(parse_note(checkpoint.read_bytes())[0])
    result = cli("timestamp", "verify", token, "--checkpoint", text, "--ca", pki.ca_cert)
    assert result.code == 0, result.stderr
    assert " size 0 " in result.text


def test_verify_refuses_a_token_for_another_checkpoint(
    cli: Cli,
    stamped: Stamped,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    reply_0, _ = _get(cli, stamped, tmp_path, 0)
    _, checkpoint_3 = _get(cli, stamped, tmp_path, 3)
    result = cli("timestamp", "verify", reply_0, "--checkpoint", checkpoint_3, "--ca", pki.ca_cert)
    assert result.code == 1
    assert "another message: not this checkpoint" in one_error_line(result.stderr)


def test_verify_refuses_another_ca(
    cli: Cli,
    stamped: Stamped,
    other_pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    reply, checkpoint = _get(cli, stamped, tmp_path, 3)
    result = cli("timestamp", "verify", reply, "--checkpoint", checkpoint, "--ca", other_pki.ca_cert)
    assert result.code == 1
    assert "certificate verify error" in one_error_line(result.stderr)


def test_verify_refuses_a_changed_byte(cli: Cli, stamped: Stamped, pki: Pki, tmp_path: Path) -> None:  # noqa: F811
    reply, checkpoint = _get(cli, stamped, tmp_path, 3)
    data = bytearray(reply.read_bytes())
    data[-10] ^= 0x01  # inside the signature value
    reply.write_bytes(bytes(data))
    result = cli("timestamp", "verify", reply, "--checkpoint", checkpoint, "--ca", pki.ca_cert)
    assert result.code == 1
    assert "does not verify" in one_error_line(result.stderr)


def test_verify_checks_the_log_signature_when_asked(
    cli: Cli,
    stamped: Stamped,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    reply, checkpoint = _get(cli, stamped, tmp_path, 3)
    forged = checkpoint.read_bytes().replace(b"\n3\n", b"\n4\n", 1)
    checkpoint.write_bytes(forged)
    result = cli(
        "timestamp", "verify", reply, "--checkpoint", checkpoint, "--ca", pki.ca_cert, "--vkey", stamped.directory.vkey
    )
    assert result.code == 1
    assert "invalid signature" in one_error_line(result.stderr)


def test_get_without_time_stamps(cli: Cli, data_dir: DataDir) -> None:
    result = cli("timestamp", "get", "--dir", data_dir.path)
    assert result.code == 1
    assert "no checkpoint of this log has a time-stamp yet" in one_error_line(result.stderr)
    sized = cli("timestamp", "get", "--dir", data_dir.path, "--size", "7")
    assert sized.code == 1
    assert "size 7 has no time-stamp" in one_error_line(sized.stderr)
