"""The threads `serve` runs beside the request handlers, built from sealtrail.toml.

Ownership: a Background owns every component it builds (the integrity audit, witnessing,
time-stamping, forwarders, alerts, [[monitor]] watchers, the retention schedule, the archiver).
It starts them in the order built and stops them in reverse, all before the log closes, since
they append through the Log or read its store; only the archiver stops after the log has
closed, so that the final checkpoint is archived too. Each component reports its status to
the app's metrics and is reachable from Services for the routes that show it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..alerts import AlertService
from ..archive import open_archiver
from ..exporters.forwarder import ForwarderGroup
from ..integrity import IntegrityAlarm, IntegrityMonitor, RaiseAlarm
from ..retention import RetentionScheduler
from ..timestamping import Timestamping
from ..watchers import Watchers
from ..witnessing import Witnessing
from .services import Services

__all__ = ["Background"]

logger = logging.getLogger(__name__)


@dataclass
class _Component:
    name: str
    start: Callable[[], object]
    stop: Callable[[], object]


@dataclass
class Background:
    """Started and stopped by the app's lifespan (see the module docstring)."""

    components: list[_Component] = field(default_factory=list)
    after_log: list[_Component] = field(default_factory=list)

    @classmethod
    def assemble(cls, services: Services) -> Background:
        """Build what the settings ask for, wire alarms and metrics, and fill in `services`."""
        settings, log, store, metrics = services.settings, services.log, services.store, services.metrics
        directory = services.directory
        background = cls()
        add = background._add
        audit_alarms: list[IntegrityAlarm] = services.on_integrity_failure  # (origin, message)
        raised: list[RaiseAlarm] = []  # (kind, message, evidence): witness refusals, forks seen by monitors

        if settings.retention.interval is not None:
            retention = RetentionScheduler(log, store, settings.retention, settings.retention.interval)
            add("retention", retention.start, retention.stop)
        if settings.forward:
            forwarders = services.forwarders = ForwarderGroup(directory.path, settings.forward)
            forwarders.provide_metrics(metrics.provide)
            add("forwarders", forwarders.start, forwarders.stop)
        if settings.witnessing.enabled:
            witnessing = services.witnessing = Witnessing(settings.witnessing, log, services.view, raised)
            witnessing.provide_metrics(metrics.provide)
            add("witnessing", witnessing.start, witnessing.close)
        if settings.timestamping:
            timestamping = services.timestamping = Timestamping(settings.timestamping, log, store)
            timestamping.provide_metrics(metrics.provide)
            add("timestamping", timestamping.start, timestamping.close)
        if settings.alerts is not None and settings.alerts.enabled:
            alerts = services.alerts = AlertService(settings.alerts, log, store, directory.path / "alerts.db")
            alerts.provide_metrics(metrics.provide)
            audit_alarms.append(alerts.integrity_alarm)
            raised.append(alerts.raise_integrity_alarm)
            add("alerts", alerts.start, alerts.close)
        if settings.monitor:
            watchers = Watchers(settings.monitor, directory.path / "monitors", directory.verifier(), raised)
            add("monitors", watchers.start, watchers.close)
        if settings.verify_interval > 0:  # after the alerts: every integrity alarm is registered by its start
            mldsa = directory.mldsa_verifier()  # a log made with `init --pq`: its ML-DSA-44 signatures are audited
            integrity = services.integrity = IntegrityMonitor(
                directory.db,
                directory.verifier(),
                settings.verify_interval,
                log,
                audit_alarms,
                required=() if mldsa is None else (mldsa,),
            )
            metrics.watch_integrity(integrity.status)
            add("integrity audit", integrity.start, integrity.close)
        if settings.archive:
            archiver = services.archiver = open_archiver(settings.archive, store)
            archiver.provide_metrics(metrics.provide)
            background.after_log.append(_Component("archive", archiver.start, archiver.close))
        return background

    def _add(self, name: str, start: Callable[[], object], stop: Callable[[], object]) -> None:
        self.components.append(_Component(name, start, stop))

    def start(self) -> None:
        for component in [*self.components, *self.after_log]:
            component.start()

    def stop(self) -> None:
        """Stop what uses the log, newest first; one that fails to stop does not keep the others running."""
        _stop_all(reversed(self.components))

    def stop_after_log(self) -> None:
        _stop_all(self.after_log)


def _stop_all(components: Iterable[_Component]) -> None:
    for component in components:
        try:
            component.stop()
        except Exception:
            logger.exception("stopping %s failed", component.name)
