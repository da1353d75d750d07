"""Envelope → OCSF 1.5.0 event (schema.ocsf.io), one class per envelope kind.

  auth.*                         Authentication 3002 (Logon 1, Logoff 2)
  access.change                  Account Change 3001 (Create, Enable, Password Change, …, Attach/Detach Policy)
  api.request, secret.access,    API Activity 6003 (Create 1, Read 2, Update 3, Delete 4, Other 99)
  config.change, code.*, ci.*
  deploy                         Application Lifecycle 6002 (Update 8, Remove 2)
  *.alert                        Detection Finding 2004 (Create 1, Update 2, Close 3)
  anything else, redactions      Base Event 0 (Other 99)

Where the copy sits in the log: metadata.uid = the leaf hash (hex),
metadata.sequence = the log index, metadata.log_name = the log's origin;
metadata.original_time = the envelope time as written. The rest of the
envelope (id, kind, source, target, attrs) is under unmapped.sealtrail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from .. import __version__
from .record import REDACTED_KIND, ForwardRecord, epoch_millis, operation_of, severity_of

__all__ = ["OCSF_VERSION", "to_ocsf"]

OCSF_VERSION = "1.5.0"

_CATEGORY_NAMES = {0: "Other", 2: "Findings", 3: "Identity & Access Management", 6: "Application Activity"}
_USER_TARGETS = frozenset({"user", "member", "account", "collaborator", "serviceaccount", "service_account"})
_HOST_TARGETS = frozenset({"host", "node", "machine", "server", "vm"})
_STATUS = {"success": (1, "Success"), "failure": (2, "Failure")}

_API_ACTIVITIES = {"create": (1, "Create"), "read": (2, "Read"), "update": (3, "Update"), "delete": (4, "Delete")}
_FINDING_CLOSE = ("resolve", "resolved", "close", "closed", "dismiss", "dismissed", "fixed", "revoked")
_FINDING_UPDATE = ("reopen", "reopened", "update", "updated", "validated", "bypass", "bypassed", "assigned")


def _words(action: str | None) -> list[str]:
    text = (action or "").lower()
    for separator in "._-/:":
        text = text.replace(separator, " ")
    return text.split()


def _user(name: str | None, uid: str | None, kind: str | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if name:
        user["name"] = name
    if uid:
        user["uid"] = uid
    if kind:
        user["type"] = kind
        user["type_id"] = {"user": 1, "admin": 2, "system": 3, "service": 3}.get(kind.lower(), 99)
    return user or {"name": "unknown"}


def _actor(record: ForwardRecord) -> dict[str, Any]:
    name, uid = record.text("actor", "name"), record.text("actor", "id")
    if name or uid:
        return {"user": _user(name, uid, record.text("actor", "type"))}
    return {"app_name": record.text("source", "id") or "unknown"}


def _src_endpoint(record: ForwardRecord) -> dict[str, Any] | None:
    ip = record.text("actor", "ip")
    return {"ip": ip} if ip else None


def _resource(record: ForwardRecord) -> dict[str, Any] | None:
    resource = {
        key: value
        for key, value in (
            ("uid", record.text("target", "id")),
            ("name", record.text("target", "name")),
            ("type", record.text("target", "type")),
        )
        if value
    }
    return resource if "uid" in resource or "name" in resource else None


def _authentication(record: ForwardRecord) -> tuple[int, int, str, dict[str, Any]]:
    words = _words(record.kind + " " + (record.text("action") or ""))
    logoff = any(word in ("logout", "logoff", "signout") for word in words)
    actor = record.text("actor", "name"), record.text("actor", "id"), record.text("actor", "type")
    body: dict[str, Any] = {"user": _user(*actor)}
    target_type = (record.text("target", "type") or "").lower()
    target = record.text("target", "id") or record.text("target", "name")
    if target and target_type in _HOST_TARGETS:
        body["dst_endpoint"] = {"hostname": target}
    else:
        body["service"] = {"name": target or record.text("source", "id") or "unknown"}
    src = _src_endpoint(record)
    if src:
        body["src_endpoint"] = src
    mfa = record.get("attrs", "mfa")
    if isinstance(mfa, bool):
        body["is_mfa"] = mfa
    body["_activity"] = (2, "Logoff") if logoff else (1, "Logon")
    return 3002, 3, "Authentication", body


def _account_activity(record: ForwardRecord, user_target: bool) -> tuple[int, str]:
    words = _words(record.text("action"))
    if any("password" in word for word in words):
        return (4, "Password Reset") if "reset" in words else (3, "Password Change")
    if any(word in ("mfa", "2fa", "two", "factor", "two_factor") for word in words):
        return (11, "MFA Factor Disable") if "disable" in words or "disabled" in words else (10, "MFA Factor Enable")
    if "unlock" in words or "unblock" in words or "unblocked" in words:
        return 12, "Unlock"
    if "lock" in words or "block" in words or "blocked" in words or "locked" in words:
        return 9, "Lock"
    if "enable" in words or "enabled" in words:
        return 2, "Enable"
    if "disable" in words or "disabled" in words or "suspend" in words or "suspended" in words:
        return 5, "Disable"
    operation = operation_of(record.text("action"))
    if operation == "create":
        return (1, "Create") if user_target and "member" not in words else (7, "Attach Policy")
    if operation == "delete":
        return (6, "Delete") if user_target and "member" not in words else (8, "Detach Policy")
    return 99, "Other"


def _account_change(record: ForwardRecord) -> tuple[int, int, str, dict[str, Any]]:
    target_type = (record.text("target", "type") or "").lower()
    user_target = target_type in _USER_TARGETS
    if user_target or record.text("target", "id") or record.text("target", "name"):
        user = _user(record.text("target", "name"), record.text("target", "id"), record.text("target", "type"))
    else:
        user = _user(record.text("actor", "name"), record.text("actor", "id"), record.text("actor", "type"))
    body: dict[str, Any] = {"user": user, "actor": _actor(record)}
    activity, name = _account_activity(record, user_target)
    if activity in (7, 8):
        policy = next(
            (value for key in ("role", "permission", "access_level", "scope") if (value := record.text("attrs", key))),
            None,
        )
        if policy:
            body["policy"] = {"name": policy}
    src = _src_endpoint(record)
    if src:
        body["src_endpoint"] = src
    body["_activity"] = (activity, name)
    return 3001, 3, "Account Change", body


def _api_activity(record: ForwardRecord) -> tuple[int, int, str, dict[str, Any]]:
    operation = operation_of(record.text("action"))
    if operation == "other" and (record.kind == "config.change" or record.kind == "code.push"):
        operation = "update"
    activity, name = _API_ACTIVITIES.get(operation, (99, "Other"))
    api: dict[str, Any] = {"operation": record.text("action") or record.kind}
    source_id = record.text("source", "id")
    if source_id:
        api["service"] = {"name": source_id}
    body: dict[str, Any] = {
        "actor": _actor(record),
        "api": api,
        "src_endpoint": _src_endpoint(record) or {"name": "unknown"},
        "_activity": (activity, name),
    }
    resource = _resource(record)
    if resource:
        body["resources"] = [resource]
    status = record.get("attrs", "http_status")
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        body["http_response"] = {"code": status}
    return 6003, 6, "API Activity", body


def _application_lifecycle(record: ForwardRecord) -> tuple[int, int, str, dict[str, Any]]:
    app: dict[str, Any] = {"name": record.text("target", "name") or record.text("target", "id") or "unknown"}
    if record.text("target", "id"):
        app["uid"] = record.text("target", "id")
    version = record.text("attrs", "version")
    if version:
        app["version"] = version
    activity = (2, "Remove") if operation_of(record.text("action")) == "delete" else (8, "Update")
    return 6002, 6, "Application Lifecycle", {"app": app, "_activity": activity}


def _detection_finding(record: ForwardRecord) -> tuple[int, int, str, dict[str, Any]]:
    words = _words(record.text("action"))
    if any(word in _FINDING_CLOSE for word in words):
        activity = (3, "Close")
    elif any(word in _FINDING_UPDATE for word in words):
        activity = (2, "Update")
    else:
        activity = (1, "Create")
    alert = record.get("attrs", "alert")
    source_id = record.text("source", "id") or "unknown"
    uid = f"{source_id}/{alert}" if isinstance(alert, int | str) and alert != "" else (record.text("id") or "unknown")
    title = record.text("attrs", "secret_type") or record.text("attrs", "title") or record.text("action") or record.kind
    finding: dict[str, Any] = {"uid": uid, "title": title, "types": [record.kind]}
    body: dict[str, Any] = {"finding_info": finding, "is_alert": True, "_activity": activity}
    resource = _resource(record)
    if resource:
        body["resources"] = [resource]
    return 2004, 2, "Detection Finding", body


def _base_event(record: ForwardRecord) -> tuple[int, int, str, dict[str, Any]]:
    return 0, 0, "Base Event", {"_activity": (99, "Other")}


def _classify(record: ForwardRecord) -> tuple[int, int, str, dict[str, Any]]:
    kind = record.kind
    family = kind.partition(".")[0]
    if record.redacted:
        return _base_event(record)
    if family == "auth":
        return _authentication(record)
    if kind == "access.change":
        return _account_change(record)
    if kind in ("api.request", "secret.access", "config.change") or family in ("code", "ci"):
        return _api_activity(record)
    if family == "deploy":
        return _application_lifecycle(record)
    if kind.endswith(".alert"):
        return _detection_finding(record)
    return _base_event(record)


def to_ocsf(record: ForwardRecord) -> dict[str, Any]:
    """The OCSF event for one record; valid against the OCSF 1.5.0 class schema it names."""
    class_uid, category_uid, class_name, body = _classify(record)
    activity_id, activity_name = body.pop("_activity")
    severity = severity_of(record)
    metadata: dict[str, Any] = {
        "product": {"name": "sealtrail", "vendor_name": "sealtrail", "version": __version__},
        "version": OCSF_VERSION,
        "uid": record.leaf_hex,
        "sequence": record.index,
        "log_name": record.origin,
    }
    time_ms = epoch_millis(record.text("time"))
    if record.redacted or time_ms is None:
        time_ms = int(datetime.now(UTC).timestamp() * 1000)
    else:
        metadata["original_time"] = record.text("time")
    logged = epoch_millis(record.text("received"))
    if logged is not None:
        metadata["logged_time"] = logged
    action = record.text("action")
    if action:
        metadata["event_code"] = action
    env = record.text("env")
    if env:
        metadata["labels"] = [f"env:{env}"]
    event: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": _CATEGORY_NAMES[category_uid],
        "activity_id": activity_id,
        "activity_name": activity_name if not (class_uid == 0 and action) else action,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity_name}",
        "severity_id": int(severity),
        "severity": severity.label,
        "time": time_ms,
        "metadata": metadata,
        **body,
    }
    if record.redacted:
        event["activity_name"] = REDACTED_KIND
        event["message"] = f"log entry {record.index} is redacted; its leaf hash still stands in the tree"
        redacted = {"redacted": True, "index": record.index, "leaf_hash": record.leaf_hex}
        if record.redaction:
            redacted["redaction"] = dict(record.redaction)
        event["unmapped"] = {"sealtrail": redacted}
        return event
    outcome = record.text("outcome") or "unknown"
    event["status_id"], event["status"] = _STATUS.get(outcome, (0, "Unknown"))
    event["message"] = " ".join(part for part in (record.kind, action, record.text("target", "id")) if part)
    raw = record.get("raw")
    if raw is not None:
        event["raw_data"] = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    unmapped: dict[str, Any] = {"index": record.index, "leaf_hash": record.leaf_hex, "kind": record.kind}
    for field in ("id", "env"):
        if record.text(field):
            unmapped[field] = record.text(field)
    for field in ("source", "target", "attrs"):
        value = record.get(field)
        if isinstance(value, dict) and value:
            unmapped[field] = value
    if class_uid in (6002, 2004) and record.get("actor"):
        unmapped["actor"] = record.get("actor")
    event["unmapped"] = {"sealtrail": unmapped}
    return event
