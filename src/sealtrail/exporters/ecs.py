"""Envelope → Elastic Common Schema document (ECS 8.11; event.* categorisation per its allowed values).

Field choices: @timestamp = when it happened, event.created = when sealtrail
accepted it, event.id = the envelope id, event.action/outcome as the source
said, user.* = the actor, source.ip = the actor's address, host.name = the
host acted on (or the syslog sender), labels.env = env, event.original = the
raw payload as JSON text when it is stored inline. Everything else of the
envelope is under `sealtrail.*`, with `sealtrail.index`, `sealtrail.leaf_hash`
(hex) and `sealtrail.origin` so that the copy can be checked against the log;
`sealtrail.attrs` is free-form (map it as `flattened`, see docs/forwarders.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from .record import REDACTED_KIND, ForwardRecord, operation_of, severity_of

__all__ = ["ECS_VERSION", "to_ecs"]

ECS_VERSION = "8.11.0"

_USER_TARGETS = frozenset({"user", "member", "account", "collaborator", "serviceaccount", "service_account"})
_GROUP_TARGETS = frozenset({"team", "group", "organization"})
_HOST_TARGETS = frozenset({"host", "node", "machine", "server", "vm"})
_CRUD_TYPE = {"create": "creation", "delete": "deletion", "update": "change", "read": "access"}


def _categorise(record: ForwardRecord) -> tuple[str, list[str], list[str]]:
    """(event.kind, event.category, event.type) from the envelope kind and action (ECS allowed values)."""
    kind = record.kind
    family = kind.partition(".")[0]
    operation = operation_of(record.text("action"))
    target_type = (record.text("target", "type") or "").lower()
    if kind in ("auth.success", "auth.failure"):
        return "event", ["authentication"], ["start"]
    if family == "auth":
        return "event", ["authentication"], ["end" if "logout" in kind or "logoff" in kind else "info"]
    if kind == "access.change" or family == "access":
        types = [_CRUD_TYPE.get(operation, "change") if operation != "read" else "info"]
        if target_type in _USER_TARGETS:
            types.append("user")
        elif target_type in _GROUP_TARGETS:
            types.append("group")
        return "event", ["iam"], types
    if kind == "config.change":
        return "event", ["configuration"], [_CRUD_TYPE.get(operation, "change")]
    if kind in ("api.request", "secret.access"):
        if record.text("outcome") == "failure" and kind == "secret.access":
            return "event", ["api"], ["denied"]
        return "event", ["api"], [_CRUD_TYPE.get(operation, "info")]
    if kind == "secret.alert":
        return "alert", ["intrusion_detection"], ["info"]
    if kind.endswith(".alert"):
        return "alert", ["vulnerability"], ["info"]
    if family == "deploy":
        return "event", ["package"], ["installation"]
    if family == "code":
        return "event", ["configuration"], ["change" if operation in ("update", "create", "delete") else "info"]
    return "event", [], ["info"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path as nested objects, skipping None."""
    if value is None:
        return
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def to_ecs(record: ForwardRecord) -> dict[str, Any]:
    """The ECS document for one record (a redacted entry becomes a minimal event naming its index)."""
    doc: dict[str, Any] = {"ecs": {"version": ECS_VERSION}}
    sealtrail: dict[str, Any] = {"index": record.index, "leaf_hash": record.leaf_hex, "origin": record.origin}
    if record.redacted:
        doc["@timestamp"] = _now()
        doc["event"] = {
            "kind": "event",
            "type": ["info"],
            "action": REDACTED_KIND,
            "outcome": "unknown",
            "module": "sealtrail",
            "dataset": "sealtrail.audit",
            "severity": int(severity_of(record)),
        }
        doc["message"] = f"log entry {record.index} is redacted; its leaf hash still stands in the tree"
        sealtrail.update(redacted=True, kind=REDACTED_KIND)
        if record.redaction:
            sealtrail["redaction"] = dict(record.redaction)
            if record.redaction.get("id"):
                doc["event"]["id"] = record.redaction["id"]
        doc["sealtrail"] = sealtrail
        return doc
    event_kind, categories, types = _categorise(record)
    source_type = record.text("source", "type")
    doc["@timestamp"] = record.text("time") or record.text("received") or _now()
    event: dict[str, Any] = {
        "kind": event_kind,
        "type": types,
        "outcome": record.text("outcome") or "unknown",
        "module": "sealtrail",
        "dataset": f"sealtrail.{source_type or 'audit'}",
        "severity": int(severity_of(record)),
    }
    if categories:
        event["category"] = categories
    for field, value in (
        ("id", record.text("id")),
        ("action", record.text("action")),
        ("created", record.text("received")),
        ("provider", record.text("source", "id")),
    ):
        if value is not None:
            event[field] = value
    raw = record.get("raw")
    if raw is not None:
        event["original"] = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    doc["event"] = event

    actor_name, actor_id, actor_ip = (
        record.text("actor", "name"),
        record.text("actor", "id"),
        record.text("actor", "ip"),
    )
    _put(doc, "user.name", actor_name)
    _put(doc, "user.id", actor_id)
    _put(doc, "source.ip", actor_ip)
    target_type = (record.text("target", "type") or "").lower()
    target_name = record.text("target", "name") or record.text("target", "id")
    host = None
    if target_type in _HOST_TARGETS:
        host = record.text("target", "id") or target_name
    elif source_type == "syslog":
        host = record.text("source", "id")
    _put(doc, "host.name", host)
    if target_type in _USER_TARGETS and record.kind.partition(".")[0] in ("access", "auth"):
        _put(doc, "user.target.name", target_name)
    env = record.text("env")
    if env is not None:
        doc["labels"] = {"env": env}
    related: dict[str, list[str]] = {}
    users = [value for value in (actor_name, actor_id) if value]
    if users:
        related["user"] = list(dict.fromkeys(users))
    if actor_ip:
        related["ip"] = [actor_ip]
    if host:
        related["hosts"] = [host]
    if related:
        doc["related"] = related

    sealtrail["kind"] = record.kind
    for field in ("source", "target", "attrs"):
        value = record.get(field)
        if isinstance(value, dict) and value:
            sealtrail[field] = value
    actor_type = record.text("actor", "type")
    if actor_type is not None:
        sealtrail["actor"] = {"type": actor_type}
    if record.get("sig") is not None:
        sealtrail["signed"] = True
    doc["sealtrail"] = sealtrail
    return doc
