"""The log's side of c2sp.org/tlog-witness: get each new checkpoint cosigned by the configured witnesses.

One thread per witness follows the sequencer's latest checkpoint and submits
it with a consistency proof from the size the witness last cosigned (the
largest checkpoint holding its cosignature, from the store, so it survives a
restart; 0 for a witness never heard from). A 409 names the witness's real
size: the request is rebuilt from it and sent again. Each returned line is
kept only if the witness's configured key verifies it over the checkpoint;
lines by other keys are ignored (spec: "MUST ignore"). When a checkpoint holds
cosignatures from `policy` (k) of the n configured witnesses it is recorded as
witnessed. Failures back off exponentially up to `retry_max` seconds, and a
witness that comes back is caught up with the latest checkpoint.

Configuration, in sealtrail.toml:

    [witnessing]
    policy = 2            # k: cosignatures a checkpoint needs (default: all witnesses)
    # timeout = 10        # seconds per request
    # retry_max = 60      # longest wait between attempts after a failure

    [[witnessing.witness]]
    url = "https://witness1.example.com"          # the submission prefix; /add-checkpoint is appended
    vkey = "witness1.example.com+1a2b3c4d+BK..."  # its cosignature/v1 key (an Ed25519 vkey is accepted too)
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .cosignature import CosignatureVerifier, parse_witness_key
from .integrity import RaiseAlarm
from .log import Log
from .merkle import ProofError
from .note import NoteError, Signature, parse_note
from .store.base import StoreError
from .view import LogView
from .witness.client import WitnessClient, WitnessConflict, WitnessError, WitnessRefused
from .witness.protocol import ProtocolError, parse_signature_lines

__all__ = ["WitnessConfig", "Witnessing", "WitnessingSettings", "parse_witnessing"]


logger = logging.getLogger("sealtrail.witnessing")

RETRY_MIN = 0.5
"""First wait after a failed submission (seconds); it doubles up to retry_max."""
CONFLICT_ROUNDS = 3
"""409 answers followed in a row before the submission counts as failed."""


@dataclass(frozen=True)
class WitnessConfig:
    """One witness: its submission prefix and its key."""

    url: str
    key: CosignatureVerifier

    @property
    def name(self) -> str:
        return self.key.name


@dataclass(frozen=True)
class WitnessingSettings:
    """`[witnessing]`: the witnesses and how many must cosign a checkpoint (see the module docstring)."""

    witnesses: tuple[WitnessConfig, ...] = ()
    policy: int = 0
    """k of n; 0 means all configured witnesses."""
    timeout: float = 10.0
    retry_max: float = 60.0

    @property
    def enabled(self) -> bool:
        return bool(self.witnesses)

    @property
    def needed(self) -> int:
        return self.policy or len(self.witnesses)

    def describe(self) -> str:
        """The policy as recorded with a witnessed checkpoint, e.g. `2 of 3: a+1a2b3c4d, ...`."""
        keys = ", ".join(f"{w.key.name}+{w.key.key_id:08x}" for w in self.witnesses)
        return f"{self.needed} of {len(self.witnesses)}: {keys}"


_KNOWN = {"policy", "timeout", "retry_max", "witness"}


def parse_witnessing(table: object) -> WitnessingSettings:
    """The [witnessing] table of sealtrail.toml (None or missing: no witnesses); ValueError says what is wrong."""
    if table is None:
        return WitnessingSettings()
    if not isinstance(table, Mapping):
        raise ValueError("witnessing must be a table")
    unknown = set(table) - _KNOWN
    if unknown:
        raise ValueError(f"unknown setting witnessing.{sorted(unknown)[0]}")
    entries = table.get("witness", [])
    if not isinstance(entries, list) or not all(isinstance(entry, Mapping) for entry in entries):
        raise ValueError("witnessing.witness must be an array of tables: [[witnessing.witness]] url = ... vkey = ...")
    witnesses = tuple(_witness(number, entry) for number, entry in enumerate(entries, start=1))
    keys = [(w.key.name, w.key.key_id) for w in witnesses]
    if len(set(keys)) != len(keys):
        raise ValueError("witnessing.witness: the same witness key is configured twice")
    policy = table.get("policy", 0)
    if isinstance(policy, bool) or not isinstance(policy, int) or not 0 <= policy <= len(witnesses):
        raise ValueError(f"witnessing.policy must be a whole number from 1 to the {len(witnesses)} witnesses")
    timeout, retry_max = table.get("timeout", 10.0), table.get("retry_max", 60.0)
    for name, value in (("timeout", timeout), ("retry_max", retry_max)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"witnessing.{name} must be a positive number of seconds")
    return WitnessingSettings(witnesses, policy, float(timeout), float(retry_max))


def _witness(number: int, entry: Mapping[str, Any]) -> WitnessConfig:
    where = f"witnessing.witness #{number}"
    unknown = set(entry) - {"url", "vkey"}
    if unknown:
        raise ValueError(f"{where}: unknown setting {sorted(unknown)[0]}")
    url, vkey = entry.get("url"), entry.get("vkey")
    if not isinstance(url, str) or not isinstance(vkey, str):
        raise ValueError(f"{where} needs url and vkey strings")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: url {url!r} must be an http:// or https:// URL")
    try:
        key = parse_witness_key(vkey)
    except NoteError as exc:
        raise ValueError(f"{where}: vkey: {exc}") from None
    return WitnessConfig(url, key)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class _Status:
    """What a metrics endpoint or an operator wants to know about one witness."""

    name: str
    key: str
    url: str
    cosigned_size: int | None = None
    ok: bool = False
    """The latest submission was cosigned."""
    last_success: str | None = None
    last_success_unix: float | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_refusal: int | None = None
    submissions: int = 0
    conflicts: int = 0
    """409 answers naming another size, each followed by a resend from it."""
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "name": self.name,
                "key": self.key,
                "url": self.url,
                "cosigned_size": self.cosigned_size,
                "ok": self.ok,
                "last_success": self.last_success,
                "last_success_unix": self.last_success_unix,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "last_refusal": self.last_refusal,
                "submissions": self.submissions,
                "conflicts": self.conflicts,
                "failures": self.failures,
            }


class Witnessing:
    """Submits the log's checkpoints to every configured witness (see the module docstring)."""

    def __init__(
        self, settings: WitnessingSettings, log: Log, view: LogView, alarms: Sequence[RaiseAlarm] = ()
    ) -> None:
        self.settings = settings
        self.log = log
        self.view = view
        self.alarms = alarms
        """Called (kind "witness_refusal", message, evidence) on a witness's first refusal after a success."""
        self.stopping = threading.Event()
        self._policy_lock = threading.Lock()
        self._workers = [_Worker(config, self) for config in settings.witnesses]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for worker in self._workers:
            thread = threading.Thread(target=worker.run, name=f"sealtrail-witness-{worker.config.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop submitting; waits for requests in flight (at most the timeout)."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(self.settings.timeout + 2)
        for worker in self._workers:
            worker.client.close()

    def __enter__(self) -> Witnessing:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> dict[str, Any]:
        """Policy, the latest witnessed checkpoint, and each witness's state (for GET /v1/witnesses, metrics)."""
        latest = self.view.store.latest_witnessed()
        return {
            "policy": self.settings.needed,
            "of": len(self.settings.witnesses),
            "latest_witnessed": None if latest is None else {"size": latest[0], "policy": latest[1]},
            "witnesses": [worker.status.snapshot() for worker in self._workers],
        }

    def provide_metrics(self, provide: Callable[[str, Callable[[], float | Mapping[str, float]]], None]) -> None:
        """Export each witness's state and the policy through a metrics registry's `provide(name, provider)`."""

        def per_witness(value: Callable[[dict[str, Any]], float]) -> Callable[[], Mapping[str, float]]:
            return lambda: {w["name"]: value(w) for w in (worker.status.snapshot() for worker in self._workers)}

        provide("witness_ok", per_witness(lambda w: 1.0 if w["ok"] else 0.0))
        provide("witness_cosigned_size", per_witness(lambda w: float(w["cosigned_size"] or 0)))
        provide("witness_last_cosignature_timestamp_seconds", per_witness(lambda w: float(w["last_success_unix"] or 0)))
        provide("witness_policy_met", lambda: 1.0 if self.latest_is_witnessed() else 0.0)

    def latest_is_witnessed(self) -> bool:
        """Whether the sequencer's latest checkpoint met the policy."""
        return self.view.store.witnessed(self.log.latest_checkpoint()[0]) is not None

    def record_if_witnessed(self, size: int) -> None:
        """Record the checkpoint of `size` as witnessed once k configured witnesses cosigned it."""
        configured = {(w.key.name, w.key.key_id) for w in self.settings.witnesses}
        with self._policy_lock:
            lines = "".join(self.view.store.cosignatures(size)).encode()
            try:
                held = {(s.name, s.key_id) for s in parse_signature_lines(lines)} if lines else set()
            except ProtocolError:
                return
            if len(held & configured) >= self.settings.needed and self.view.store.add_witnessed(
                size, self.settings.describe()
            ):
                logger.info("checkpoint %d met the witness policy (%s)", size, self.settings.describe())


class _Worker:
    """Feeds one witness: always the latest checkpoint, from the size it last cosigned."""

    def __init__(self, config: WitnessConfig, owner: Witnessing) -> None:
        self.config = config
        self.owner = owner
        self.log = owner.log
        self.store = owner.view.store
        self.view = owner.view
        self.stop = owner.stopping
        self.client = WitnessClient(config.url, timeout=owner.settings.timeout)
        self.status = _Status(config.name, config.key.vkey, self.client.url)
        self.old: int | None = None
        """The witness's latest cosigned size as far as this log knows (None: not read from the store yet)."""
        self.refusing = False
        """The witness refused the last submission: further refusals raise no new alarm until it cosigns."""

    def run(self) -> None:
        stop = self.stop
        backoff = 0.0
        while not stop.is_set():
            if backoff and stop.wait(backoff * random.uniform(0.8, 1.2)):
                return
            try:
                done = self._round()
            except Exception as exc:  # a store closed under us at shutdown, or a bug: keep the server up
                if stop.is_set():
                    return
                self._failed(f"{type(exc).__name__}: {exc}")
                done = False
            backoff = 0.0 if done else min(max(backoff * 2, RETRY_MIN), self.owner.settings.retry_max)

    def _round(self) -> bool:
        """Submit the latest checkpoint if this witness has not cosigned it, else wait for a newer one."""
        held = self.store.latest_cosigned(self.config.key.name, self.config.key.key_id)
        if self.old is None:
            self.old = held or 0
            with self.status.lock:
                self.status.cosigned_size = held
                self.status.ok = held is not None  # it cosigned for this log before a restart
        size, note = self.log.latest_checkpoint()
        if held is not None and held >= size:
            self._wait_newer(size)
            return True
        return self._submit(size, note)

    def _wait_newer(self, size: int) -> None:
        with contextlib.suppress(TimeoutError):
            self.log.wait_for_checkpoint(size + 1, timeout=0.5)

    def _submit(self, size: int, note: bytes) -> bool:
        assert self.old is not None
        with self.status.lock:
            self.status.submissions += 1
        for _ in range(CONFLICT_ROUNDS):
            old = self.old
            if old > size:
                self._failed(
                    f"the witness has cosigned size {old}, beyond this log's latest checkpoint {size}: "
                    "was the log rolled back, or does another log use this origin?"
                )
                return False
            try:
                proof = self.view.consistency_proof(old, size) if 0 < old < size else []
                lines = self.client.add_checkpoint(old, proof, note)
            except WitnessConflict as conflict:
                if conflict.size == old:
                    self._refused(409, f"409 for the size it holds ({old}): it cosigned another tree at that size")
                    return False
                logger.info("witness %s holds size %d, not %d: resending", self.config.name, conflict.size, old)
                self.old = conflict.size
                with self.status.lock:
                    self.status.conflicts += 1
                continue
            except WitnessRefused as refused:
                self._refused(refused.status, str(refused))
                return False
            except (WitnessError, ProtocolError, ProofError, StoreError) as exc:  # unreachable, timed out, 5xx
                self._failed(str(exc))
                return False
            return self._keep(size, note, lines)
        self._failed(f"answered 409 {CONFLICT_ROUNDS} times in a row")
        return False

    def _keep(self, size: int, note: bytes, signatures: Sequence[Signature]) -> bool:
        """Store the lines the witness's key verifies over the checkpoint text; ignore lines by other keys."""
        key = self.config.key
        text, _ = parse_note(note)
        body = text.encode("utf-8")
        mine = [s for s in signatures if (s.name, s.key_id) == (key.name, key.key_id)]
        valid = [s for s in mine if key.verify(body, s.signature)]
        if not valid:
            what = "an invalid cosignature" if mine else "no cosignature by its configured key"
            self._failed(f"answered 200 with {what}")
            return False
        self.store.add_cosignature(size, key.name, key.key_id, valid[0].line())
        self.old = size
        self.refusing = False
        with self.status.lock:
            self.status.cosigned_size = size
            self.status.ok = True
            self.status.last_success = _now()
            self.status.last_success_unix = time.time()
        self.owner.record_if_witnessed(size)
        return True

    def _refused(self, status: int, message: str) -> None:
        logger.warning("witness %s refused the checkpoint: %s", self.config.name, message)
        with self.status.lock:
            self.status.last_refusal = status
        first, self.refusing = not self.refusing, True
        self._failed(message, log=False)
        if first:  # once per run of refusals: retries of the same refusal are not new news
            evidence = {"witness": self.config.name, "status": status, "url": self.client.url}
            for alarm in self.owner.alarms:
                try:
                    alarm("witness_refusal", f"witness {self.config.name} refused: {message}", evidence)
                except Exception:
                    logger.exception("witness %s: an alarm hook failed", self.config.name)

    def _failed(self, message: str, *, log: bool = True) -> None:
        if log:
            logger.warning("witness %s: %s", self.config.name, message)
        with self.status.lock:
            self.status.ok = False
            self.status.failures += 1
            self.status.last_error = message
            self.status.last_error_at = _now()
