"""The alert service inside `serve`: follows the log, fires rules, records and delivers alerts.

Ownership: an AlertService owns alerts.db and one follower thread plus one sender thread
per sink (sinks.SinkSender). The follower reads entries from its cursor (so nothing is
missed across restarts), evaluates them with the engine, appends each alert to the log
as an event (source sealtrail/alerts, kind alert.<rule>; its delivery key makes a replay
store it once), then saves engine state, the cursor and the sinks' outbox rows in one
transaction. Every `tick` seconds it also runs the timer rules (silent sources, and the
checkpoint lag it measures on the Log).

`raise_integrity_alarm(kind, detail, evidence)` is the entry point for integrity
failures found elsewhere (the periodic audit, witnesses, monitors): callable from any
thread or coroutine, it never blocks; the alarm becomes an event of kind
`integrity.<kind>` that the integrity rules see on the follower's next pass.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..event import format_time, prepare, uuid7
from ..log import Log
from ..store.base import LogStore
from .engine import Alert, Engine, alert_envelope, is_alert_event
from .rules import AlertsConfig
from .sinks import SinkSender
from .state import AlertStore

__all__ = ["INTEGRITY_KINDS", "AlertService", "AlertStatus", "SinkStatus"]

logger = logging.getLogger("sealtrail.alerts")

INTEGRITY_KINDS = ("verify_failure", "witness_refusal", "fork", "checkpoint_stale")
"""The integrity alarms the built-in rules know (others become integrity.<kind> events no built-in matches)."""

_KIND = re.compile(r"[^a-z0-9_]+")
_MAX_DETAIL = 2000
_MAX_EVIDENCE = 16 * 1024

AlertListener = Callable[[Alert], None]


@dataclass(frozen=True)
class SinkStatus:
    name: str
    type: str
    url: str
    """scheme://host:port only (paths and queries may hold tokens)."""
    queued: int
    delivered: int
    failed_attempts: int
    rejected: int
    expired: int
    last_error: str | None


@dataclass(frozen=True)
class AlertStatus:
    cursor: int
    """The next log index the engine will evaluate."""
    log_size: int
    rules: int
    """Rules in force."""
    fired: Mapping[str, int]
    """Alerts fired, by rule, since alerts.db was created."""
    sinks: tuple[SinkStatus, ...]


def _json_safe(value: Any, limit: int) -> Any:
    """`value` as JSON-compatible data (unknown types as text), or a note when it is too big."""
    encoded = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    if len(encoded) > limit:
        return {"truncated": True, "size": len(encoded), "text": encoded[: limit // 2].decode(errors="replace")}
    return orjson.loads(encoded)


class AlertService:
    """Alert rules and sinks over one log (see the module docstring)."""

    def __init__(
        self,
        config: AlertsConfig,
        log: Log,
        store: LogStore,
        db_path: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._log = log
        self._store = store
        self._clock = clock
        self._db = AlertStore(db_path)
        self._origin = store.origin
        self._cursor = self._initial_cursor()
        self._engine = Engine(config.active_rules, self._db.load_state())
        self._senders = [SinkSender(sink, self._db, base_url=config.base_url, clock=clock) for sink in config.sinks]
        self._alarms: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._listeners: list[AlertListener] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_tick: float | None = None
        self._unsigned_since: float | None = None

    def _initial_cursor(self) -> int:
        size = self._store.size()
        saved = self._db.cursor()
        if saved is None or self._db.meta("origin") != self._origin:
            start = 0 if self.config.start == "beginning" else size
            self._db.start(self._origin, start)
            return start
        if saved > size:
            logger.warning("alerts.db's cursor (%d) is past the log's end (%d): following from the end", saved, size)
            self._db.start(self._origin, size)
            return size
        return saved

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the log and deliver to the sinks on background threads until close()."""
        for sender in self._senders:
            sender.start()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sealtrail-alerts", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop following (an evaluation in progress finishes first), stop the senders, close alerts.db."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for sender in self._senders:
            sender.close()
        self._db.close()

    def wake(self) -> None:
        """Look for new entries now rather than at the next poll."""
        self._wake.set()

    def add_listener(self, listener: AlertListener) -> None:
        """Call `listener(alert)` on the follower thread for every new alert (after it is recorded)."""
        self._listeners.append(listener)

    def provide_metrics(self, provide: Callable[[str, Callable[[], Mapping[str, float]]], None]) -> None:
        """Export sealtrail_alerts_fired{rule} through a metrics registry's `provide(name, provider)`."""
        provide("alerts_fired", lambda: {rule: float(count) for rule, count in self.status().fired.items()})

    def raise_integrity_alarm(self, kind: str, detail: str, evidence: Mapping[str, Any] | None = None) -> None:
        """Report an integrity failure (`kind`: one of INTEGRITY_KINDS); never blocks, any thread."""
        clean = _KIND.sub("_", kind.lower()).strip("_") or "unknown"
        now = format_time(datetime.fromtimestamp(self._clock(), UTC))
        attrs: dict[str, Any] = {"detail": str(detail)[:_MAX_DETAIL]}
        if evidence:
            attrs["evidence"] = _json_safe(dict(evidence), _MAX_EVIDENCE)
        logger.error("integrity alarm %s: %s", clean, attrs["detail"])
        self._alarms.put(
            {
                "id": uuid7(),
                "source": {"type": "sealtrail", "id": "integrity"},
                "kind": f"integrity.{clean}",
                "action": clean,
                "outcome": "failure",
                "time": now,
                "received": now,
                "attrs": attrs,
            }
        )
        self._wake.set()

    def integrity_alarm(self, origin: str, message: str) -> None:
        """The periodic audit's alarm signature (integrity.IntegrityAlarm): a verify failure."""
        self.raise_integrity_alarm("verify_failure", message, {"origin": origin})

    # -- status -------------------------------------------------------------------------------

    def status(self) -> AlertStatus:
        counters = self._db.counters()
        fired = {name: value for (scope, name), value in counters.items() if scope == "rule"}
        sinks = []
        for sender in self._senders:
            sink = sender.sink
            scope = f"sink:{sink.name}"
            sinks.append(
                SinkStatus(
                    name=sink.name,
                    type=sink.type,
                    url=sink.display_url(),
                    queued=self._db.depth(sink.name),
                    delivered=counters.get((scope, "delivered"), 0),
                    failed_attempts=counters.get((scope, "failed_attempts"), 0),
                    rejected=counters.get((scope, "rejected"), 0),
                    expired=counters.get((scope, "expired"), 0),
                    last_error=sender.last_error,
                )
            )
        return AlertStatus(self._cursor, self._log.size, len(self._engine.rules), fired, tuple(sinks))

    # -- the follower -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep following: the next pass re-evaluates from the saved cursor
                logger.exception("alert evaluation failed; retrying")
                self._stop.wait(max(self.config.poll, 1.0))
            self._wake.wait(self.config.poll)
            self._wake.clear()

    def run_once(self, now: float | None = None) -> list[Alert]:
        """One pass: evaluate new entries and pending integrity alarms, then the timers if due.

        Returns the alerts it recorded. The follower thread calls it; tests may call it
        directly on a service that was not started.
        """
        with self._lock:
            fired: list[Alert] = []
            end = self._store.size()  # durably committed (the Log's size runs ahead while a batch commits)
            while self._cursor < end and not self._stop.is_set():
                stop = min(end, self._cursor + self.config.batch)
                alerts = []
                for index, entry in self._store.entries(self._cursor, stop):
                    envelope = orjson.loads(entry)
                    if not is_alert_event(envelope):
                        alerts.extend(self._engine.observe(index, envelope))
                fired += self._record(alerts, stop)
            alarms = []
            while True:
                try:
                    alarms.append(self._alarms.get_nowait())
                except queue.Empty:
                    break
            if alarms:
                try:
                    fired += self._record([a for alarm in alarms for a in self._engine.observe(None, alarm)], None)
                except BaseException:
                    for alarm in alarms:  # not recorded: raise them again on the next pass
                        self._alarms.put(alarm)
                    raise
            moment = self._clock() if now is None else now
            if self._last_tick is None or moment - self._last_tick >= self.config.tick:
                self._last_tick = moment
                lag, detail = self._checkpoint_lag(moment)
                fired += self._record(self._engine.tick(moment, checkpoint_lag=lag, detail=detail), None)
            return fired

    def _checkpoint_lag(self, now: float) -> tuple[float, str]:
        """Seconds since the log first held entries its latest signed checkpoint does not cover."""
        size = self._log.size
        signed = self._log.latest_checkpoint()[0]
        if signed >= size:
            self._unsigned_since = None
            return 0.0, ""
        if self._unsigned_since is None:
            self._unsigned_since = now
        lag = now - self._unsigned_since
        return lag, f"{size - signed} entries from index {signed} have waited {lag:.0f}s for a signed checkpoint"

    def _record(self, alerts: Sequence[Alert], cursor: int | None) -> list[Alert]:
        """Append the alerts to the log, then save state, cursor and outbox rows together.

        An alert already in the log (its earlier recording crashed before the save) gets its
        original receipt from the log's dedup and is queued now, so it is still delivered once.
        """
        if not alerts and cursor is None and not self._engine.has_changes:
            return []
        now = self._clock()
        fired_at = format_time(datetime.fromtimestamp(now, UTC))
        try:
            receipts = self._log.append([prepare(alert_envelope(alert, fired_at)) for alert in alerts])
            queued = []
            for alert, receipt in zip(alerts, receipts, strict=True):
                body = {
                    "alert": alert.to_json(),
                    "fired_at": fired_at,
                    "log": {"origin": self._origin, "index": receipt.index},
                }
                queued += [
                    (sender.sink.name, alert.id, body)
                    for sender in self._senders
                    if sender.sink.accepts(alert.rule, alert.severity)
                ]
            self._db.commit(
                changes=self._engine.take_changes(),
                cursor=cursor,
                queued=queued,
                fired=[alert.rule for alert in alerts],
                now=now,
            )
        except BaseException:
            self._engine = Engine(self.config.active_rules, self._db.load_state())  # back to what was saved
            raise
        if cursor is not None:
            self._cursor = cursor
        if queued:
            for sender in self._senders:
                sender.wake()
        for alert in alerts:
            logger.warning("alert %s [%s]: %s", alert.rule, alert.severity, alert.summary)
            for listener in self._listeners:
                try:
                    listener(alert)
                except Exception:
                    logger.exception("alert listener failed")
        return list(alerts)
