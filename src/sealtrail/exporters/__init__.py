"""SIEM exporters: formats (ECS, OCSF, CEF, RFC 5424 syslog), sinks, and forwarders that follow the log.

Every exported record names its log index and RFC 6962 leaf hash, so a copy
in a SIEM can be checked against the log (docs/forwarders.md).
"""

from __future__ import annotations

from .cef import to_cef
from .config import ForwardConfig, load_forward_configs, parse_forward_tables
from .ecs import ECS_VERSION, to_ecs
from .forwarder import Forwarder, ForwarderGroup, ForwarderStatus, cursor_path, read_records
from .ocsf import OCSF_VERSION, to_ocsf
from .record import ForwardRecord, Severity, severity_of
from .syslog import SyslogFormat, frame

__all__ = [
    "ECS_VERSION",
    "OCSF_VERSION",
    "ForwardConfig",
    "ForwardRecord",
    "Forwarder",
    "ForwarderGroup",
    "ForwarderStatus",
    "Severity",
    "SyslogFormat",
    "cursor_path",
    "frame",
    "load_forward_configs",
    "parse_forward_tables",
    "read_records",
    "severity_of",
    "to_cef",
    "to_ecs",
    "to_ocsf",
]
