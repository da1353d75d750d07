"""The witness's memory: for each log it witnesses, its keys and the latest tree it cosigned.

One SQLite file (WAL, synchronous=FULL). `advance` checks a request against
the stored tree and records the new one in the same BEGIN IMMEDIATE
transaction, with a compare-and-swap on (size, root): two requests from the
same old size can never both succeed, and a cosigned tree is never rolled back
(c2sp.org/tlog-witness, the race at the end of "add-checkpoint"). Triggers
refuse, inside the database, any update that shrinks a log or changes the root
of a size, and any deletion.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..merkle import EMPTY_ROOT, HASH_SIZE, ProofError, verify_append_only
from ..note import NoteError, is_valid_name, parse_verifier
from ..sqlitedb import ThreadConnections, immediate
from .protocol import Refusal

__all__ = ["EVIDENCE_PER_LOG", "Evidence", "LogState", "WitnessState"]

EVIDENCE_PER_LOG = 1000
"""Refused, log-signed requests kept per log as evidence of misbehaviour; later ones are not stored."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    origin  TEXT PRIMARY KEY,
    size    INTEGER NOT NULL CHECK (size >= 0),
    root    BLOB NOT NULL CHECK (length(root) = 32),
    updated TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS logs_only_grow BEFORE UPDATE ON logs
WHEN NEW.origin IS NOT OLD.origin OR NEW.size < OLD.size OR (NEW.size = OLD.size AND NEW.root IS NOT OLD.root)
BEGIN SELECT RAISE(ABORT, 'sealtrail witness: a cosigned tree is never rolled back or replaced'); END;
CREATE TRIGGER IF NOT EXISTS logs_no_delete BEFORE DELETE ON logs
BEGIN SELECT RAISE(ABORT, 'sealtrail witness: a witnessed log is never forgotten'); END;
CREATE TRIGGER IF NOT EXISTS logs_no_replace BEFORE INSERT ON logs
WHEN EXISTS (SELECT 1 FROM logs WHERE origin = NEW.origin)
BEGIN SELECT RAISE(ABORT, 'sealtrail witness: a witnessed log is never replaced'); END;
CREATE TABLE IF NOT EXISTS log_keys (
    origin TEXT NOT NULL REFERENCES logs(origin),
    vkey   TEXT NOT NULL,
    added  TEXT NOT NULL,
    PRIMARY KEY (origin, vkey)
);
CREATE TABLE IF NOT EXISTS evidence (
    id       INTEGER PRIMARY KEY,
    origin   TEXT NOT NULL,
    received TEXT NOT NULL,
    status   INTEGER NOT NULL,
    reason   TEXT NOT NULL,
    request  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_origin ON evidence(origin);
"""


@dataclass(frozen=True)
class LogState:
    """A witnessed log: its trusted keys and the latest tree this witness cosigned (0 and the empty root at first)."""

    origin: str
    size: int
    root: bytes
    keys: tuple[str, ...]
    updated: str


@dataclass(frozen=True)
class Evidence:
    """A log-signed request the witness refused because it contradicts what it cosigned before."""

    origin: str
    received: str
    status: int
    reason: str
    request: bytes


def _now() -> str:
    return datetime.now(UTC).isoformat()


class WitnessState:
    """The witness database at `path`, created if missing. Connections are per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = ThreadConnections(path, ["PRAGMA foreign_keys=ON"])
        try:
            self._db.get().executescript(_SCHEMA)  # every statement is IF NOT EXISTS
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ValueError(f"{path} is not a witness database: {exc}") from None

    def close(self) -> None:
        self._db.close()

    # -- configuration ---------------------------------------------------------

    def add_log(self, origin: str, vkey: str) -> bool:
        """Trust `vkey` (an Ed25519 note key) for checkpoints of `origin`; True if the origin is new.

        A new log starts at size 0 with the empty tree's root, so its first
        checkpoint is accepted from `old 0` with an empty proof.
        """
        if not origin or any(ch < " " for ch in origin):
            raise ValueError(f"origin {origin!r} must be non-empty, on one line")
        try:
            verifier = parse_verifier(vkey.strip())
        except NoteError as exc:
            raise ValueError(f"log key: {exc}") from None
        if not is_valid_name(verifier.name):
            raise ValueError(f"log key name {verifier.name!r} is not a valid key name")
        with immediate(self._db.get()) as conn:
            new = conn.execute("SELECT 1 FROM logs WHERE origin = ?", (origin,)).fetchone() is None
            if new:
                conn.execute(
                    "INSERT INTO logs(origin, size, root, updated) VALUES (?, 0, ?, ?)", (origin, EMPTY_ROOT, _now())
                )
            conn.execute(
                "INSERT INTO log_keys(origin, vkey, added) SELECT ?1, ?2, ?3 "
                "WHERE NOT EXISTS (SELECT 1 FROM log_keys WHERE origin = ?1 AND vkey = ?2)",
                (origin, verifier.vkey, _now()),
            )
        return new

    def keys(self, origin: str) -> list[str] | None:
        """The vkeys trusted for `origin`, or None if this witness does not witness it."""
        rows = self._db.get().execute("SELECT vkey FROM log_keys WHERE origin = ? ORDER BY added, vkey", (origin,))
        keys = [str(vkey) for (vkey,) in rows]
        return keys or None

    def log(self, origin: str) -> LogState | None:
        conn = self._db.get()
        row = conn.execute("SELECT size, root, updated FROM logs WHERE origin = ?", (origin,)).fetchone()
        if row is None:
            return None
        return LogState(origin, int(row[0]), bytes(row[1]), tuple(self.keys(origin) or ()), str(row[2]))

    def logs(self) -> list[LogState]:
        origins = [str(origin) for (origin,) in self._db.get().execute("SELECT origin FROM logs ORDER BY origin")]
        return [state for origin in origins if (state := self.log(origin)) is not None]

    def evidence(self, origin: str) -> list[Evidence]:
        rows = self._db.get().execute(
            "SELECT origin, received, status, reason, request FROM evidence WHERE origin = ? ORDER BY id", (origin,)
        )
        return [Evidence(str(o), str(r), int(s), str(why), bytes(req)) for o, r, s, why, req in rows]

    # -- the check and the update, atomically ------------------------------------

    def advance(
        self, origin: str, old_size: int, new_size: int, new_root: bytes, proof: Sequence[bytes], request: bytes
    ) -> None:
        """Record tree (new_size, new_root) for `origin` if it extends the stored tree, else raise Refusal.

        The caller has verified the log's signature on the checkpoint; `request`
        is kept as evidence when the refusal shows the log contradicting itself.
        """
        if len(new_root) != HASH_SIZE:
            raise Refusal(400, "the checkpoint's root hash is not 32 bytes")
        if old_size > new_size:
            raise Refusal(400, f"old size {old_size} is larger than the checkpoint's size {new_size}")
        with immediate(self._db.get()) as conn:
            refusal = self._check_and_swap(conn, origin, old_size, new_size, new_root, proof)
            if refusal is not None and refusal.status in (409, 422) and refusal.size is None:
                self._keep_evidence(conn, origin, refusal, request)
        if refusal is not None:
            raise refusal

    @staticmethod
    def _check_and_swap(
        conn: sqlite3.Connection, origin: str, old_size: int, new_size: int, new_root: bytes, proof: Sequence[bytes]
    ) -> Refusal | None:
        row = conn.execute("SELECT size, root FROM logs WHERE origin = ?", (origin,)).fetchone()
        if row is None:
            return Refusal(404, f"this witness does not witness the log {origin!r}")
        size, root = int(row[0]), bytes(row[1])
        if old_size != size:
            return Refusal(409, f"the latest checkpoint this witness cosigned for {origin} has size {size}", size)
        if new_size == size and new_root != root:
            return Refusal(409, f"this witness cosigned another root hash for size {size} of {origin}: the log forked")
        try:
            verify_append_only(old_size, new_size, proof, root, new_root)
        except ProofError as exc:
            return Refusal(422, f"the consistency proof from size {old_size} does not verify: {exc}")
        swapped = conn.execute(
            "UPDATE logs SET size = ?, root = ?, updated = ? WHERE origin = ? AND size = ? AND root = ?",
            (new_size, new_root, _now(), origin, size, root),
        )
        if swapped.rowcount != 1:  # unreachable under BEGIN IMMEDIATE; the compare-and-swap guards it anyway
            return Refusal(409, f"the latest checkpoint this witness cosigned for {origin} changed", size)
        return None

    @staticmethod
    def _keep_evidence(conn: sqlite3.Connection, origin: str, refusal: Refusal, request: bytes) -> None:
        (kept,) = conn.execute("SELECT COUNT(*) FROM evidence WHERE origin = ?", (origin,)).fetchone()
        if int(kept) < EVIDENCE_PER_LOG:
            conn.execute(
                "INSERT INTO evidence(origin, received, status, reason, request) VALUES (?, ?, ?, ?, ?)",
                (origin, _now(), refusal.status, refusal.message, request),
            )
