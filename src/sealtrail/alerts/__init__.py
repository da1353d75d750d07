"""Alerts: rules over the log's events, alert events appended to the log, and delivery to sinks.

rules (the model, TOML, built-ins) → engine (pure evaluation with saved state) →
runner (the service inside `serve`) → sinks (webhook, Slack, Alertmanager) over the
durable outbox in state. See docs/alerts.md.
"""

from .engine import Alert, Engine, alert_envelope, is_alert_event
from .rules import AlertsConfig, ConfigError, Rule, SinkConfig, builtin_rules, load_alerts_config, parse_alerts_table
from .runner import INTEGRITY_KINDS, AlertService, AlertStatus, SinkStatus

__all__ = [
    "INTEGRITY_KINDS",
    "Alert",
    "AlertService",
    "AlertStatus",
    "AlertsConfig",
    "ConfigError",
    "Engine",
    "Rule",
    "SinkConfig",
    "SinkStatus",
    "alert_envelope",
    "builtin_rules",
    "is_alert_event",
    "load_alerts_config",
    "parse_alerts_table",
]
