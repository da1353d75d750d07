"""An evidence bundle from a log whose checkpoints a real witness cosigned: the bundle carries the cosignature
and `evidence verify` can demand it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from _support import devsecops_event, wait_for
from _witness_fixtures import served
from conftest import run_cli
from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.note import generate_ed25519
from sealtrail.server import Settings, create_app
from sealtrail.witness.server import create_witness_app
from sealtrail.witness.service import Witness
from sealtrail.witness.state import WitnessState
from sealtrail.witnessing import WitnessConfig, WitnessingSettings

ORIGIN = "evidence.sealtrail.test/log"


def _witnessed_log(tmp_path: Path) -> tuple[DataDir, Witness, str, int]:
    """A log of 12 events whose checkpoint a real witness on loopback cosigned (policy 1 of 1); its witness's URL."""
    directory = DataDir(tmp_path / "log")
    directory.init(ORIGIN)
    state = WitnessState(tmp_path / "witness.db")
    state.add_log(ORIGIN, directory.verifier().vkey)
    witness = Witness(state, generate_ed25519("witness.example/w1"))
    credentials = Credentials(directory.credentials)
    credentials.add_source("ci", "api")
    ingest, _ = credentials.create_token("ingest", {"ingest"})

    with served(create_witness_app(witness, close_state=False)) as running:
        witnessing = WitnessingSettings((WitnessConfig(running.url, witness.verifier),), 1, timeout=5.0)
        settings = Settings(checkpoint_interval=0.05, prepare_workers=0, verify_interval=0, witnessing=witnessing)
        with TestClient(create_app(directory, settings)) as client:
            events = [devsecops_event(n, "witnessed") for n in range(12)]
            posted = client.post(
                "/v1/events?wait=checkpoint",
                content=json.dumps(events).encode(),
                headers={"Authorization": f"Bearer {ingest}", "Content-Type": "application/json"},
            )
            assert posted.status_code == 200, posted.text
            size = posted.json()["receipts"][-1]["checkpoint_size"]

            def witnessed() -> bool:
                store = directory.store()
                try:
                    latest = store.latest_witnessed()
                    return latest is not None and latest[0] >= size
                finally:
                    store.close()

            wait_for(witnessed, what="a checkpoint that met the witness policy")
    return directory, witness, running.url, size


def test_bundle_carries_the_witness_cosignature(tmp_path: Path) -> None:
    directory, witness, url, _ = _witnessed_log(tmp_path)
    witness_vkey = witness.verifier.vkey
    config = tmp_path / "sealtrail.toml"
    config.write_text(f'[[witnessing.witness]]\nurl = "{url}"\nvkey = "{witness_vkey}"\n')
    out = tmp_path / "evidence.zip"
    exported = run_cli("evidence", "export", out, "--dir", directory.path, "--index", "3", "--config", config)
    assert exported.code == 0, exported.stderr
    assert "warning" not in exported.stderr
    with zipfile.ZipFile(out) as archive:
        assert archive.read("witnesses.vkeys").decode().strip() == witness.verifier.vkey
        assert archive.read("checkpoint").count(b"\xe2\x80\x94 witness.example/w1 ") == 1  # once, not twice

    pinned: list[str | Path] = ["--vkey", directory.vkey, "--witness", witness_vkey]
    verified = run_cli("evidence", "verify", out, *pinned, "--min-cosignatures", "1")
    assert verified.code == 0, verified.stderr
    assert "cosigned by witness.example/w1" in verified.text

    other = generate_ed25519("witness.example/w1")  # same name, another key: its cosignature is not there
    refused = run_cli("evidence", "verify", out, "--vkey", directory.vkey, "--witness", other.verifier.vkey,
                      "--min-cosignatures", "1")  # fmt: skip
    assert refused.code == 1
    assert "checkpoint: has 0 valid witness cosignatures, fewer than the 1 required" in refused.stderr


def test_report_rests_on_the_witnessed_checkpoint(tmp_path: Path) -> None:
    """`sealtrail report` names the latest checkpoint that met the witness policy, with its cosigners."""
    directory, witness, _, size = _witnessed_log(tmp_path)
    result = run_cli("report", "--dir", directory.path, "--from", "2026-01-01", "--format", "json")
    assert result.code == 0, result.stderr
    integrity = json.loads(result.stdout)["integrity"]
    assert integrity["size"] >= size and integrity["cosigners"] == [witness.verifier.name]
    assert integrity["witness_policy"].startswith("1 of 1: witness.example/w1+")
    assert integrity["verified"] is True
