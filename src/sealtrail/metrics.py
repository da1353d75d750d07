"""Prometheus metrics of one sealtrail server, in a registry of its own (one per app).

Pushed as things happen: events appended (by source, kind and outcome, counted
after the durable ack), ingest requests refused (by route and reason), ingest and
ack latencies. Pulled at scrape time: the sequencer's counters (`Log.stats`), the
periodic integrity audit (`IntegrityMonitor.status`), and the status of the other
components (witnesses, forwarders, alerts, archive, mirrors), which register a
function with `Metrics.provide` under a name from `STATUS_METRICS`. This module
imports none of those components: they, or the app, call it.

Every metric name is listed in docs/metrics.md; the Grafana dashboard and the
Prometheus rules under deploy/ use only these names (tests/deploy checks it).
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .event import PreparedEvent
from .integrity import IntegrityStatus
from .log import LogStats, Receipt

__all__ = [
    "MAX_EVENT_SERIES",
    "OTHER",
    "STATUS_METRICS",
    "Metrics",
    "StatusMetric",
    "reject_reason",
]

logger = logging.getLogger("sealtrail.metrics")

MAX_EVENT_SERIES = 2000
"""Distinct (source, kind, outcome) series kept; further combinations are counted under OTHER."""

OTHER = "_other"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))

_REASONS = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    404: "unknown_source",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
    504: "checkpoint_timeout",
}


def reject_reason(status: int) -> str:
    """The `reason` label of a refused ingest request, from its HTTP status (a short, fixed vocabulary)."""
    return _REASONS.get(status, f"http_{status}")


@dataclass(frozen=True)
class StatusMetric:
    """A metric another component provides through `Metrics.provide` (exposed as sealtrail_<name>)."""

    name: str
    kind: Literal["gauge", "counter"]
    help: str
    label: str | None = None
    """The one label of a per-item metric (the provider returns {label value: number}); None: one number."""


STATUS_METRICS: dict[str, StatusMetric] = {
    m.name: m
    for m in (
        StatusMetric(
            "witness_ok", "gauge", "1 if the witness cosigned the latest checkpoint sent to it, else 0.", "witness"
        ),
        StatusMetric(
            "witness_cosigned_size", "gauge", "Size of the latest checkpoint the witness cosigned.", "witness"
        ),
        StatusMetric(
            "witness_last_cosignature_timestamp_seconds",
            "gauge",
            "Unix time of the witness's latest cosignature.",
            "witness",
        ),
        StatusMetric(
            "witness_policy_met",
            "gauge",
            "1 if the latest checkpoint has the cosignatures the witness policy requires.",
        ),
        StatusMetric("forwarder_lag_events", "gauge", "Entries appended but not yet delivered to the sink.", "sink"),
        StatusMetric(
            "forwarder_lag_seconds", "gauge", "Age of the oldest entry not yet delivered to the sink.", "sink"
        ),
        StatusMetric("forwarder_errors", "counter", "Failed deliveries to the sink.", "sink"),
        StatusMetric("alerts_fired", "counter", "Alerts fired, by rule.", "rule"),
        StatusMetric("archive_size", "gauge", "Tree size whose checkpoint and tiles are published to the archive."),
        StatusMetric("archive_ok", "gauge", "1 if the latest archive upload succeeded, else 0."),
        StatusMetric(
            "archive_last_success_timestamp_seconds", "gauge", "Unix time of the latest successful archive upload."
        ),
        StatusMetric("timestamp_ok", "gauge", "1 if the latest RFC 3161 time-stamp request succeeded, else 0."),
        StatusMetric("timestamp_size", "gauge", "Size of the latest checkpoint with a verified RFC 3161 time-stamp."),
        StatusMetric(
            "timestamp_last_success_timestamp_seconds", "gauge", "Unix time of the latest verified time-stamp."
        ),
        StatusMetric("mirror_size", "gauge", "Verified tree size of the mirrored or monitored log.", "log"),
        StatusMetric("mirror_ok", "gauge", "1 if the latest check of the mirrored or monitored log passed.", "log"),
        StatusMetric(
            "mirror_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the latest successful check of the mirrored or monitored log.",
            "log",
        ),
    )
}
"""The names other components may provide; the dashboard and the alerting rules rely on them."""

StatusValue = float | Mapping[str, float]
"""A provider's answer: one number, or {label value: number} for a StatusMetric with a label."""


class _SourceRef(msgspec.Struct, frozen=True):
    id: str = ""


class _Labels(msgspec.Struct, frozen=True):
    """The three envelope fields the event counters are labelled with; msgspec skips the rest unread."""

    kind: str = ""
    outcome: str = "unknown"
    source: _SourceRef = _SourceRef()


_LABELS = msgspec.json.Decoder(_Labels)


class Metrics:
    """The metrics of one app (see module docstring); scrape with `exposition`."""

    def __init__(self, *, max_event_series: int = MAX_EVENT_SERIES) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._max_series = max_event_series
        self._series: set[tuple[str, str, str]] = set()
        self._sources: set[str] = set()
        self.events_ingested = Counter(
            "sealtrail_events_ingested",
            "Events durably appended, by source id, kind and outcome (repeated deliveries not included).",
            ["source", "kind", "outcome"],
            registry=registry,
        )
        self.events_duplicate = Counter(
            "sealtrail_events_duplicate",
            "Repeated deliveries acknowledged with the original index; nothing written.",
            ["source"],
            registry=registry,
        )
        self.rejected = Counter(
            "sealtrail_ingest_rejected",
            "Ingest requests refused (4xx) or failed (5xx), by route and reason; nothing written except for "
            "reason=checkpoint_timeout (stored, but no checkpoint in time).",
            ["route", "reason"],
            registry=registry,
        )
        self.ingest_seconds = Histogram(
            "sealtrail_ingest_request_duration_seconds",
            "Accepted ingest requests, from arrival to the answer (after the durable commit).",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "sealtrail_ack_duration_seconds",
            "From handing events to the sequencer to their durable acknowledgement (queue, group commit, fsync).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._pulled = _Pulled()
        registry.register(self._pulled)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

    # -- pushed ----------------------------------------------------------------

    def record_appended(
        self, prepared: Sequence[PreparedEvent], receipts: Sequence[Receipt], ack_seconds: float | None = None
    ) -> None:
        """Count acknowledged events (call after the ack: only durable events are counted)."""
        if ack_seconds is not None:
            self.ack_seconds.observe(ack_seconds)
        new: Tally[tuple[str, str, str]] = Tally()
        repeated: Tally[str] = Tally()
        for event, receipt in zip(prepared, receipts, strict=False):  # never fail an acknowledged request
            labels = _labels(event.entry)
            if receipt.duplicate:
                repeated[labels[0]] += 1
            else:
                new[labels] += 1
        for labels, count in new.items():
            self.events_ingested.labels(*self._bounded(labels)).inc(count)
        for source, count in repeated.items():
            self.events_duplicate.labels(self._bounded_source(source)).inc(count)

    def record_rejected(self, route: str, status: int) -> None:
        self.rejected.labels(route, reject_reason(status)).inc()

    def record_request(self, route: str, seconds: float) -> None:
        self.ingest_seconds.labels(route).observe(seconds)

    # -- pulled at scrape time ---------------------------------------------------

    def watch_log(self, stats: Callable[[], LogStats], origin: str, version: str) -> None:
        """Export the sequencer's counters and the log's identity."""
        self._pulled.log = stats
        self._pulled.info = (origin, version)

    def watch_integrity(self, status: Callable[[], IntegrityStatus]) -> None:
        self._pulled.integrity = status

    def provide(self, name: str, provider: Callable[[], StatusValue]) -> None:
        """Export sealtrail_<name> (a name from STATUS_METRICS) with the value `provider` returns at each scrape.

        A provider that raises is logged and its metric left out of that scrape.
        """
        if name not in STATUS_METRICS:
            raise KeyError(f"unknown status metric {name!r}; known: {', '.join(sorted(STATUS_METRICS))}")
        self._pulled.providers[name] = provider

    # -- exposition ---------------------------------------------------------------

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The scrape body and its Content-Type (OpenMetrics when the Accept header asks for it)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def _bounded(self, labels: tuple[str, str, str]) -> tuple[str, str, str]:
        """`labels`, or OTHER for all three once MAX_EVENT_SERIES combinations exist (bounded cardinality)."""
        if labels in self._series:
            return labels
        if len(self._series) >= self._max_series:
            return (OTHER, OTHER, OTHER)
        self._series.add(labels)
        return labels

    def _bounded_source(self, source: str) -> str:
        if source in self._sources:
            return source
        if len(self._sources) >= self._max_series:
            return OTHER
        self._sources.add(source)
        return source


def _labels(entry: bytes) -> tuple[str, str, str]:
    try:
        decoded = _LABELS.decode(entry)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return (OTHER, OTHER, OTHER)
    return (decoded.source.id, decoded.kind, decoded.outcome)


class _Pulled(Collector):
    """Everything computed at scrape time."""

    def __init__(self) -> None:
        self.log: Callable[[], LogStats] | None = None
        self.info: tuple[str, str] | None = None
        self.integrity: Callable[[], IntegrityStatus] | None = None
        self.providers: dict[str, Callable[[], StatusValue]] = {}

    def describe(self) -> list[Metric]:
        return []  # names vary with the providers registered: no collision checks at registration

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        if self.info is not None:
            yield _gauge("log_info", "The log served (value 1).", 1, {"origin": self.info[0], "version": self.info[1]})
        if self.log is not None:
            yield from _log_metrics(self.log(), now)
        if self.integrity is not None:
            yield from _integrity_metrics(self.integrity())
        for name, provider in list(self.providers.items()):
            try:
                family = _status_family(STATUS_METRICS[name], provider())
            except Exception:
                logger.warning("status provider for sealtrail_%s failed", name, exc_info=True)
                continue
            yield family


def _gauge(name: str, help: str, value: float, labels: Mapping[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"sealtrail_{name}", help, labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), value)
    return family


def _counter(name: str, help: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"sealtrail_{name}", help, value=value)


def _log_metrics(stats: LogStats, now: float) -> Iterator[Metric]:
    pending = 0.0 if stats.unsigned_since is None else max(0.0, now - stats.unsigned_since)
    yield _gauge("tree_size", "Entries committed to the log.", stats.size)
    yield _gauge("checkpoint_size", "Tree size of the latest signed checkpoint.", stats.checkpoint_size)
    yield _gauge(
        "checkpoint_age_seconds",
        "Seconds since the latest checkpoint was signed (since the server started, if it has signed none).",
        max(0.0, now - stats.signed_at),
    )
    yield _gauge(
        "checkpoint_pending_seconds",
        "Seconds committed entries have waited for a checkpoint (0: none waiting).",
        pending,
    )
    yield _gauge("sequencer_queue_events", "Events handed to the sequencer and not yet committed.", stats.queued)
    yield _counter("sequencer_batches", "Group commits.", stats.batches)
    yield _counter("sequencer_batch_events", "Events in those group commits.", stats.batched_events)
    yield _counter("sequencer_batch_seconds", "Seconds spent in those group commits.", stats.batch_seconds)
    yield _counter("checkpoint_sign_failures", "Checkpoints that could not be signed or stored.", stats.sign_failures)


def _integrity_metrics(status: IntegrityStatus) -> Iterator[Metric]:
    yield _gauge("verify_interval_seconds", "Seconds between integrity audits.", status.interval)
    runs = CounterMetricFamily("sealtrail_verify_runs", "Integrity audits run, by result.", labels=["result"])
    runs.add_metric(["ok"], status.runs - status.failures)
    runs.add_metric(["failed"], status.failures)
    yield runs
    if status.ok is None:
        return
    yield _gauge("verify_ok", "1 if the latest integrity audit passed, 0 if it found the log tampered.", int(status.ok))
    if status.last_run is not None:
        yield _gauge("verify_last_run_timestamp_seconds", "Unix time the latest audit finished.", status.last_run)
    if status.last_success is not None:
        yield _gauge(
            "verify_last_success_timestamp_seconds", "Unix time of the latest passed audit.", status.last_success
        )
    if status.duration is not None:
        yield _gauge("verify_duration_seconds", "Seconds the latest audit took.", status.duration)
    yield _gauge("verify_checked_size", "Entries covered by the latest passed audit.", status.checked_size)


def _status_family(spec: StatusMetric, value: StatusValue) -> Metric:
    name = f"sealtrail_{spec.name}"
    labels = [spec.label] if spec.label else None
    family: Metric = (
        GaugeMetricFamily(name, spec.help, labels=labels)
        if spec.kind == "gauge"
        else CounterMetricFamily(name, spec.help, labels=labels)
    )
    if isinstance(value, Mapping):
        if spec.label is None:
            raise TypeError(f"sealtrail_{spec.name} has no label: its provider must return one number")
        for item, number in value.items():
            family.add_metric([str(item)], float(number))  # type: ignore[attr-defined]
    else:
        if spec.label is not None:
            raise TypeError(f"sealtrail_{spec.name} is per {spec.label}: its provider must return a mapping")
        family.add_metric([], float(value))  # type: ignore[attr-defined]
    return family
