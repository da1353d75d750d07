"""The log's side of witnessing: a real sealtrail app submits its checkpoints to real witnesses on loopback,
serves them cosigned, records the policy, follows a 409, catches up a witness that was down, and keeps
nothing a witness refused or that its key does not verify."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from _support import devsecops_events, wait_for
from _witness_fixtures import Served, bound_socket, served, socket_url
from sealtrail.alerts.rules import AlertsConfig, parse_alerts_table
from sealtrail.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from sealtrail.cosignature import CosignatureVerifier, parse_witness_key
from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.note import generate_ed25519, open_note
from sealtrail.server import Settings, create_app, load_settings
from sealtrail.tlogproof import verify_tlog_proof
from sealtrail.witness.client import WitnessClient
from sealtrail.witness.server import create_witness_app
from sealtrail.witness.service import Witness
from sealtrail.witness.state import WitnessState
from sealtrail.witnessing import WitnessConfig, WitnessingSettings, parse_witnessing

ORIGIN = "witnessed.sealtrail.test/log"


# --- configuration --------------------------------------------------------------------------------


def test_parse_witnessing_reads_witnesses_and_policy() -> None:
    w1, w2 = generate_ed25519("w1.example/w"), generate_ed25519("w2.example/w")
    parsed = parse_witnessing(
        {
            "policy": 1,
            "timeout": 3,
            "witness": [
                {"url": "https://w1.example/", "vkey": CosignatureVerifier(w1.name, w1.public_key).vkey},
                {"url": "http://127.0.0.1:7380", "vkey": w2.verifier.vkey},  # an Ed25519 vkey of the same key
            ],
        }
    )
    assert [w.key.vkey for w in parsed.witnesses] == [
        CosignatureVerifier(w1.name, w1.public_key).vkey,
        CosignatureVerifier(w2.name, w2.public_key).vkey,
    ]
    assert (parsed.needed, parsed.timeout, parsed.retry_max, parsed.enabled) == (1, 3.0, 60.0, True)
    assert parse_witnessing({"witness": list(parsed_tables(parsed))}).needed == 2  # default: all of them
    assert parse_witnessing(None) == WitnessingSettings() and not WitnessingSettings().enabled


def parsed_tables(settings: WitnessingSettings) -> Iterator[dict[str, str]]:
    for witness in settings.witnesses:
        yield {"url": witness.url, "vkey": witness.key.vkey}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([], "must be a table"),
        ({"polcy": 1}, "unknown setting witnessing.polcy"),
        ({"witness": {"url": "x"}}, "array of tables"),
        ({"witness": [{"url": "https://w.example"}]}, "needs url and vkey"),
        ({"witness": [{"url": "ftp://w.example", "vkey": "k"}]}, "http:// or https://"),
        ({"witness": [{"url": "https://w.example", "vkey": "not a key"}]}, "vkey"),
        ({"witness": [{"url": "https://w.example", "vkey": "v", "token": "x"}]}, "unknown setting token"),
        ({"policy": 1}, "from 1 to the 0 witnesses"),
        ({"policy": True}, "whole number"),
        ({"timeout": 0}, "positive number"),
        ({"retry_max": "soon"}, "positive number"),
    ],
)
def test_parse_witnessing_refuses_bad_configuration(table: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_witnessing(table)


def test_the_same_witness_twice_is_refused() -> None:
    key = generate_ed25519("w.example/w")
    entry = {"url": "https://w.example", "vkey": key.verifier.vkey}
    with pytest.raises(ValueError, match="configured twice"):
        parse_witnessing({"witness": [entry, {**entry, "url": "https://mirror.w.example"}]})


def test_sealtrail_toml_witnessing_table(tmp_path: Path) -> None:
    key = generate_ed25519("w.example/w")
    vkey = CosignatureVerifier(key.name, key.public_key).vkey
    config = tmp_path / "sealtrail.toml"
    witness = f'[[witnessing.witness]]\nurl = "https://w.example"\nvkey = "{vkey}"\n'
    config.write_text(f"[server]\nport = 9000\n\n[witnessing]\npolicy = 1\n\n{witness}")
    settings = load_settings(config)
    assert settings.port == 9000 and settings.witnessing.witnesses[0].key.vkey == vkey
    config.write_text('[witnessing]\npolicy = 3\n[[witnessing.witness]]\nurl = "https://w.example"\nvkey = "x"\n')
    with pytest.raises(ValueError, match=r"sealtrail.toml: witnessing.witness #1: vkey"):
        load_settings(config)
    config.write_text("[server]\nwitnessing = 1\n")
    with pytest.raises(ValueError, match=r"unknown setting server\.witnessing"):
        load_settings(config)


def test_cosignature_key_accepts_both_encodings_of_a_key() -> None:
    key = generate_ed25519("w.example/w")
    from_cosignature = parse_witness_key(CosignatureVerifier(key.name, key.public_key).vkey)
    assert parse_witness_key(key.verifier.vkey) == from_cosignature


# --- a real log and real witnesses ----------------------------------------------------------------


@dataclass
class RunningWitness:
    """A witness app with its own state and key, served on `sock` (which may not be listening yet)."""

    witness: Witness
    sock: socket.socket

    @property
    def url(self) -> str:
        return socket_url(self.sock)

    @property
    def verifier(self) -> CosignatureVerifier:
        return self.witness.verifier

    def config(self, key: CosignatureVerifier | None = None) -> WitnessConfig:
        return WitnessConfig(self.url, key or self.verifier)

    def size(self) -> int:
        stored = self.witness.state.log(ORIGIN)
        return -1 if stored is None else stored.size

    def serve(self) -> Served:
        return Served(create_witness_app(self.witness, close_state=False), self.sock)


def make_witness(tmp_path: Path, name: str, log_vkey: str | None) -> RunningWitness:
    state = WitnessState(tmp_path / f"{name.replace('/', '_')}.db")
    if log_vkey is not None:
        state.add_log(ORIGIN, log_vkey)
    return RunningWitness(Witness(state, generate_ed25519(name)), bound_socket())


@dataclass
class LogApi:
    client: TestClient
    directory: DataDir
    ingest: str
    read: str

    def post(self, count: int = 3) -> int:
        """Append `count` events and wait for their checkpoint; the checkpoint's size."""
        events = [{"kind": "deploy", "source": {"type": "api", "id": "ci"}, "action": f"d{i}"} for i in range(count)]
        response = self.client.post(
            "/v1/events?wait=checkpoint",
            content=json.dumps(events).encode(),
            headers={"Authorization": f"Bearer {self.ingest}", "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        size: int = response.json()["receipts"][-1]["checkpoint_size"]
        return size

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers={"Authorization": f"Bearer {self.read}"})
        assert response.status_code == 200, response.text
        return response

    def latest_size(self) -> int:
        return parse_checkpoint(self.get("/checkpoint").text.split("\n\n")[0] + "\n").size

    def witnesses(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.get("/v1/witnesses").content)
        return found

    def store_witnessed(self, size: int) -> str | None:
        store = self.directory.store()
        try:
            return store.witnessed(size)
        finally:
            store.close()


def new_log(tmp_path: Path) -> DataDir:
    directory = DataDir(tmp_path / "log")
    directory.init(ORIGIN)
    with directory.open_log():
        pass
    return directory


@contextmanager
def log_api(
    directory: DataDir, witnesses: list[WitnessConfig], policy: int = 0, alerts: AlertsConfig | None = None
) -> Iterator[LogApi]:
    credentials = Credentials(directory.credentials)
    if not credentials.sources():
        credentials.add_source("ci", "api")
    ingest, _ = credentials.create_token("ingest", {"ingest"})
    read, _ = credentials.create_token("reader", {"read"})
    witnessing = WitnessingSettings(tuple(witnesses), policy, timeout=5.0, retry_max=0.2)
    settings = Settings(
        checkpoint_interval=0.05, prepare_workers=0, verify_interval=0, witnessing=witnessing, alerts=alerts
    )
    with TestClient(create_app(directory, settings)) as client:
        yield LogApi(client, directory, ingest, read)


def cosigners(note: bytes, witnesses: list[RunningWitness]) -> set[str]:
    """The witnesses whose cosignature on `note` verifies (unknown signatures ignored)."""
    found: set[str] = set()
    for witness in witnesses:
        try:
            opened = open_note(note, [witness.verifier])
        except ValueError:
            continue
        found.update(s.name for s in opened.verified)
    return found


def by_name(status: dict[str, Any], witness: RunningWitness) -> dict[str, Any]:
    matching: list[dict[str, Any]] = [w for w in status["witnesses"] if w["name"] == witness.verifier.name]
    [found] = matching
    return found


def test_checkpoints_are_cosigned_served_with_the_cosignatures_and_witnessed(tmp_path: Path) -> None:
    directory = new_log(tmp_path)
    vkey = directory.verifier().vkey
    witnesses = [make_witness(tmp_path, f"w{i}.example/witness", vkey) for i in (1, 2)]
    with ExitStack() as stack:
        for witness in witnesses:
            stack.enter_context(served(create_witness_app(witness.witness, close_state=False), witness.sock))
        api = stack.enter_context(log_api(directory, [w.config() for w in witnesses], policy=2))
        size = api.post(3)
        wait_for(lambda: len(cosigners(api.get("/checkpoint").content, witnesses)) == 2, what="two cosignatures")
        size = api.latest_size()
        wait_for(lambda: api.store_witnessed(api.latest_size()) is not None, what="the policy recorded")

        note = api.get("/checkpoint").content
        signed = open_checkpoint(note, ORIGIN, [directory.verifier()])  # still a valid log-signed checkpoint
        assert signed.checkpoint.size == size >= 3
        assert cosigners(note, witnesses) == {w.verifier.name for w in witnesses}
        assert api.get("/v1/checkpoint").content == note
        assert all(w.size() == size for w in witnesses)

        receipt = api.get("/v1/proof/inclusion?index=1&format=tlog-proof").content
        proof, proven, _ = verify_tlog_proof(receipt, ORIGIN, [directory.verifier()])
        assert proof.index == 1 and proven.checkpoint.size == size
        assert cosigners(proof.checkpoint, witnesses) == {w.verifier.name for w in witnesses}
        assert json.loads(api.get("/v1/proof/inclusion?index=1").content)["checkpoint"].encode() == note

        status = api.witnesses()
        assert (status["policy"], status["of"]) == (2, 2)
        assert status["latest_witnessed"]["size"] >= size
        assert status["latest_witnessed"]["policy"].startswith("2 of 2: w1.example/witness+")
        for witness in witnesses:
            mine = by_name(status, witness)
            assert mine["ok"] is True and mine["cosigned_size"] >= size and mine["last_refusal"] is None

        again = api.post(2)
        wait_for(lambda: api.store_witnessed(api.latest_size()) is not None, what="the next checkpoint witnessed")
        assert api.latest_size() >= again > size
        metrics = api.get("/metrics").text
        assert "sealtrail_witness_policy_met 1" in metrics
        assert 'sealtrail_witness_ok{witness="w1.example/witness"} 1' in metrics


def test_a_witness_that_already_knows_the_log_answers_409_and_gets_the_proof_from_its_size(tmp_path: Path) -> None:
    """The store holds no cosignature by this witness, so the log starts from `old 0`; the witness answers
    409 with the size it cosigned (submitted earlier by someone else) and the log resends from there."""
    directory = new_log(tmp_path)
    witness = make_witness(tmp_path, "w.example/witness", directory.verifier().vkey)
    with directory.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 5))
        known, note = log.sign_now()
    with served(create_witness_app(witness.witness, close_state=False), witness.sock):
        with WitnessClient(witness.url) as client:
            client.add_checkpoint(0, [], note)
        assert witness.size() == known == 5
        with log_api(directory, [witness.config()]) as api:
            size = api.post(4)
            wait_for(lambda: by_name(api.witnesses(), witness)["cosigned_size"] == api.latest_size(), what="catch-up")
            mine = by_name(api.witnesses(), witness)
            assert mine["conflicts"] >= 1 and mine["ok"] is True
            assert witness.size() == api.latest_size() >= size > known
            assert cosigners(api.get("/checkpoint").content, [witness]) == {witness.verifier.name}


def test_a_witness_that_was_down_is_caught_up_and_the_policy_met_then(tmp_path: Path) -> None:
    directory = new_log(tmp_path)
    vkey = directory.verifier().vkey
    up, down = make_witness(tmp_path, "up.example/w", vkey), make_witness(tmp_path, "down.example/w", vkey)
    with (
        served(create_witness_app(up.witness, close_state=False), up.sock),
        log_api(directory, [up.config(), down.config()], policy=2) as api,
    ):
        api.post(3)
        wait_for(lambda: by_name(api.witnesses(), up)["cosigned_size"] == api.latest_size(), what="up cosigned")
        wait_for(lambda: by_name(api.witnesses(), down)["failures"] >= 2, what="failed attempts on down")
        status = by_name(api.witnesses(), down)
        assert status["ok"] is False and status["cosigned_size"] is None and status["last_error"]
        assert api.store_witnessed(api.latest_size()) is None
        assert cosigners(api.get("/checkpoint").content, [up, down]) == {up.verifier.name}

        running = down.serve()
        try:
            wait_for(lambda: down.size() == api.latest_size(), what="the witness that came back caught up")
            wait_for(lambda: api.store_witnessed(api.latest_size()) is not None, what="the policy met")
            assert cosigners(api.get("/checkpoint").content, [up, down]) == {up.verifier.name, down.verifier.name}
            assert by_name(api.witnesses(), down)["ok"] is True
        finally:
            running.stop()


def test_refusals_and_unverifiable_cosignatures_are_reported_and_nothing_is_kept(tmp_path: Path) -> None:
    directory = new_log(tmp_path)
    stranger = make_witness(tmp_path, "stranger.example/w", None)  # does not witness this log: 404
    impostor = make_witness(tmp_path, "impostor.example/w", directory.verifier().vkey)
    other_key = generate_ed25519("impostor.example/w")  # the log is configured with another key for it
    configs = [stranger.config(), impostor.config(CosignatureVerifier(other_key.name, other_key.public_key))]
    with ExitStack() as stack:
        for witness in (stranger, impostor):
            stack.enter_context(served(create_witness_app(witness.witness, close_state=False), witness.sock))
        api = stack.enter_context(log_api(directory, configs, policy=1))
        api.post(2)
        wait_for(lambda: by_name(api.witnesses(), stranger)["last_refusal"] == 404, what="the 404")
        wait_for(lambda: by_name(api.witnesses(), impostor)["failures"] >= 1, what="the unverifiable answer")
        assert "no cosignature by its configured key" in by_name(api.witnesses(), impostor)["last_error"]
        note = api.get("/checkpoint").content
        assert note.count("\u2014".encode()) == 1  # the log's own signature only
        assert api.witnesses()["latest_witnessed"] is None


def test_a_witness_that_saw_another_tree_refuses_and_the_log_keeps_no_cosignature(tmp_path: Path) -> None:
    """Split view seen from the log: the witness cosigned a tree of this origin that this log does not have
    (signed with this log's key, as a forked log would). The log's honest checkpoints are refused: 409 for
    the same size, 422 for a larger one; it reports the refusal and keeps nothing."""
    directory = new_log(tmp_path)
    witness = make_witness(tmp_path, "w.example/witness", directory.verifier().vkey)
    forged = sign_checkpoint(Checkpoint(ORIGIN, 2, bytes(range(32))), directory.signer())
    with served(create_witness_app(witness.witness, close_state=False), witness.sock):
        with WitnessClient(witness.url) as client:
            client.add_checkpoint(0, [], forged)  # what the fork showed this witness
        with log_api(directory, [witness.config()]) as api:
            api.post(2)  # size 2 now, with the honest root
            wait_for(lambda: by_name(api.witnesses(), witness)["last_refusal"] == 409, what="the 409 at size 2")
            api.post(3)
            wait_for(lambda: by_name(api.witnesses(), witness)["last_refusal"] == 422, what="the 422 beyond")
            assert cosigners(api.get("/checkpoint").content, [witness]) == set()
            assert witness.size() == 2 and witness.witness.state.log(ORIGIN) is not None
            assert len(witness.witness.state.evidence(ORIGIN)) >= 2


def test_a_refusal_raises_one_integrity_alert_logged_as_an_event(tmp_path: Path) -> None:
    directory = new_log(tmp_path)
    witness = make_witness(tmp_path, "w.example/witness", directory.verifier().vkey)
    forged = sign_checkpoint(Checkpoint(ORIGIN, 2, bytes(range(32))), directory.signer())
    alerts = parse_alerts_table({"poll": 0.05}, tmp_path)
    with served(create_witness_app(witness.witness, close_state=False), witness.sock):
        with WitnessClient(witness.url) as client:
            client.add_checkpoint(0, [], forged)
        with log_api(directory, [witness.config()], alerts=alerts) as api:
            api.post(2)
            wait_for(lambda: by_name(api.witnesses(), witness)["last_refusal"] == 409, what="the 409 at size 2")
            api.post(3)
            wait_for(lambda: by_name(api.witnesses(), witness)["last_refusal"] == 422, what="the 422 beyond")

            def refusal_alerts() -> list[dict[str, Any]]:
                store = directory.store()
                try:
                    events = [json.loads(entry) for _, entry in store.entries(0, store.size())]
                finally:
                    store.close()
                return [e for e in events if e["kind"] == "alert.integrity-witness-refusal"]

            wait_for(lambda: bool(refusal_alerts()), what="the witness-refusal alert in the log")
    [alert] = refusal_alerts()  # the 409, then the 422 of the same run of refusals: one alarm
    details = alert["attrs"]["details"]
    assert details["detail"].startswith("witness w.example/witness refused")
    assert details["evidence"]["witness"] == "w.example/witness" and details["evidence"]["status"] == 409
