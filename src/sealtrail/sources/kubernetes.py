"""Kubernetes: the kube-apiserver audit webhook (audit.k8s.io/v1) mapped to event envelopes.

Pure: no I/O. kube-apiserver POSTs an `audit.k8s.io/v1` EventList (a single
Event is accepted too); `to_envelopes` returns one envelope per Event:

* `source` = {type: kubernetes, id, delivery: "<auditID>/<stage>"}: each
  stage of a request is its own event, and a batch the apiserver resends
  dedups to the same events;
* `kind`: auth.failure when the response is 401 or 403; access.change for
  changes to RBAC (create, update, patch, delete, deletecollection of roles,
  clusterroles, rolebindings, clusterrolebindings); secret.access for any
  request on core secrets; api.request for everything else;
* `action` = "<verb> <resource>[/<subresource>]" (e.g. "create pods/exec"),
  or "<verb> <path>" for a non-resource URL (e.g. "get /version");
* `outcome` from responseStatus.code: 2xx (and 101, a granted exec/attach
  upgrade) success, anything else failure, no response yet (RequestReceived)
  unknown, stage Panic failure;
* `actor` = user {uid, username, type: user|serviceaccount|node|anonymous|
  system, ip: sourceIPs[0]}: the authenticated user, also when it impersonated
  another (impersonatedUser is in attrs). sourceIPs[0] comes from
  X-Forwarded-For when the client sent one: attrs.source_ips keeps them all;
* `target` = objectRef {type: "<resource>[.<apiGroup>]", id: uid, name:
  "[<namespace>/]<name>"}, or {type: url, name: path};
* `time` = stageTimestamp (RFC 3339, microseconds); `attrs` = verb, stage,
  level, audit_id, request_uri, user_agent, response_code, groups,
  impersonated_user, namespace, api_group, api_version, resource, annotations
  (authorization.k8s.io/decision and /reason, pod-security, ...); `raw` = the
  Event as sent (its requestObject/responseObject are dropped, and listed in
  attrs.raw_dropped, only if the Event would be over sealtrail's raw limit).

Configuring kube-apiserver
--------------------------

1. On sealtrail, declare the source and an ingest token limited to it::

       sealtrail source add prod-cluster --type kubernetes
       sealtrail token create --scope ingest --source prod-cluster --name kube-apiserver

2. Write /etc/kubernetes/audit/sealtrail-webhook.kubeconfig, a kubeconfig
   whose cluster is sealtrail's hook for the source and whose user is the
   token (a bearer token)::

       apiVersion: v1
       kind: Config
       clusters:
         - name: sealtrail
           cluster:
             server: https://sealtrail.example.com/hooks/kubernetes/prod-cluster
             certificate-authority: /etc/kubernetes/audit/sealtrail-ca.crt
       users:
         - name: kube-apiserver
           user:
             token: "<the token printed by sealtrail token create>"
       contexts:
         - name: sealtrail
           context:
             cluster: sealtrail
             user: kube-apiserver
       current-context: sealtrail

3. Write an audit policy, /etc/kubernetes/audit/policy.yaml. The first rule
   that matches a request decides its level; keep secrets at Metadata so
   their values never reach the log::

       apiVersion: audit.k8s.io/v1
       kind: Policy
       omitStages:
         - RequestReceived
       rules:
         - level: Metadata
           resources:
             - group: ""
               resources: ["secrets", "configmaps", "serviceaccounts/token"]
             - group: authentication.k8s.io
               resources: ["tokenreviews"]
         - level: RequestResponse
           verbs: ["create", "update", "patch", "delete", "deletecollection"]
           resources:
             - group: rbac.authorization.k8s.io
               resources: ["roles", "rolebindings", "clusterroles", "clusterrolebindings"]
         - level: None
           nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/metrics", "/version"]
         - level: None
           users: ["system:kube-proxy"]
           verbs: ["watch"]
         - level: None
           resources:
             - group: coordination.k8s.io
               resources: ["leases"]
         - level: None
           resources:
             - group: ""
               resources: ["events"]
         - level: Request
           verbs: ["create", "update", "patch", "delete", "deletecollection"]
         - level: Metadata

   Leave RequestReceived in (remove omitStages) to also record requests that
   never complete; each stage is then a separate event.

4. Start kube-apiserver with (for a static pod, also mount
   /etc/kubernetes/audit read-only)::

       --audit-policy-file=/etc/kubernetes/audit/policy.yaml
       --audit-webhook-config-file=/etc/kubernetes/audit/sealtrail-webhook.kubeconfig
       --audit-webhook-version=audit.k8s.io/v1
       --audit-webhook-mode=batch
       --audit-webhook-batch-max-size=400
       --audit-webhook-batch-max-wait=5s
       --audit-webhook-batch-buffer-size=10000
       --audit-webhook-batch-throttle-enable=true
       --audit-webhook-batch-throttle-qps=10
       --audit-webhook-batch-throttle-burst=15
       --audit-webhook-initial-backoff=10s

   In batch mode the apiserver retries a failed POST a few times with
   exponential backoff (from --audit-webhook-initial-backoff), then drops
   that batch and logs an error; events that arrive while the buffer is full
   are dropped too. So keep the buffer large, and keep --audit-log-path as a
   local copy if sealtrail may be unreachable for long.
   `--audit-webhook-mode=blocking` makes each API request wait for sealtrail
   instead. A resent batch is harmless: its events dedup on auditID/stage.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from ..event import MAX_LABEL, MAX_RAW_BYTES
from .base import Envelope, SourcePayloadError

__all__ = [
    "API_VERSION",
    "MUTATING_VERBS",
    "RBAC_GROUP",
    "RBAC_RESOURCES",
    "STAGES",
    "to_envelopes",
]

API_VERSION = "audit.k8s.io/v1"
STAGES = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"})
RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_RESOURCES = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings"})
MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

_BULKY = ("responseObject", "requestObject")


def to_envelopes(body: Mapping[str, Any], source_id: str) -> list[Envelope]:
    """One envelope per Event of an audit.k8s.io/v1 EventList (or of a single Event)."""
    if not isinstance(body, Mapping):
        raise SourcePayloadError("expected a JSON object: an audit.k8s.io/v1 EventList")
    if body.get("apiVersion") != API_VERSION:
        raise SourcePayloadError(
            f"apiVersion: expected {API_VERSION!r} (start kube-apiserver with --audit-webhook-version={API_VERSION}), "
            f"got {body.get('apiVersion')!r}"
        )
    kind = body.get("kind")
    if kind == "Event":
        return [_envelope(body, "", source_id)]
    if kind != "EventList":
        raise SourcePayloadError(f"kind: expected 'EventList' (or 'Event'), got {kind!r}")
    items = body.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise SourcePayloadError("items: expected a list of audit Events")
    return [_envelope(item, f"items[{i}].", source_id) for i, item in enumerate(items)]


def _get(event: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """event[key] if it is of `kind` (None when absent or null)."""
    value = event.get(key)
    if value is not None and not isinstance(value, kind):
        raise SourcePayloadError(f"{where}{key}: expected {'an object' if kind is dict else f'a {kind.__name__}'}")
    return value


def _text(event: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = _get(event, key, str, where)
    if required and not value:
        raise SourcePayloadError(f"{where}{key}: required")
    return value or None


def _label(value: str) -> str:
    return value[:MAX_LABEL]


def _timestamp(value: str, field: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise SourcePayloadError(f"{field}: {value!r} is not an RFC 3339 timestamp")
    return value


def _actor_type(username: str) -> str:
    if username.startswith("system:serviceaccount:"):
        return "serviceaccount"
    if username.startswith("system:node:"):
        return "node"
    if username == "system:anonymous":
        return "anonymous"
    return "system" if username.startswith("system:") else "user"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _kind(verb: str, group: str, resource: str | None, code: int | None) -> str:
    if code in (401, 403):
        return "auth.failure"
    if group == RBAC_GROUP and resource in RBAC_RESOURCES and verb in MUTATING_VERBS:
        return "access.change"
    if group == "" and resource == "secrets":
        return "secret.access"
    return "api.request"


def _outcome(stage: str, code: int | None) -> str:
    if stage == "Panic":
        return "failure"
    if code is None:
        return "unknown"
    return "success" if 200 <= code < 300 or code == 101 else "failure"


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SourcePayloadError(f"{field}: expected a list of strings")
    return value


def _envelope(event: Any, where: str, source_id: str) -> Envelope:
    """The envelope of one audit.k8s.io/v1 Event."""
    if not isinstance(event, Mapping):
        raise SourcePayloadError(f"{where.rstrip('.') or 'body'}: expected an audit Event object")
    if event.get("kind", "Event") != "Event" or event.get("apiVersion", API_VERSION) != API_VERSION:
        raise SourcePayloadError(f"{where}kind: expected an {API_VERSION} Event")
    audit_id = _text(event, "auditID", where, required=True)
    stage = _text(event, "stage", where, required=True)
    verb = _text(event, "verb", where, required=True)
    assert audit_id is not None and stage is not None and verb is not None
    if stage not in STAGES:
        raise SourcePayloadError(f"{where}stage: expected one of {', '.join(sorted(STAGES))}, got {stage!r}")
    stamp = _text(event, "stageTimestamp", where) or _text(event, "requestReceivedTimestamp", where)
    if stamp is None:
        raise SourcePayloadError(f"{where}stageTimestamp: required")
    time = _timestamp(stamp, f"{where}stageTimestamp")
    user = _get(event, "user", dict, where) or {}
    impersonated = _get(event, "impersonatedUser", dict, where)
    object_ref = _get(event, "objectRef", dict, where)
    status = _get(event, "responseStatus", dict, where)
    annotations = _get(event, "annotations", dict, where)
    source_ips = _strings(event.get("sourceIPs"), f"{where}sourceIPs")
    code = status.get("code") if status else None
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise SourcePayloadError(f"{where}responseStatus.code: expected an integer")

    request_uri = _text(event, "requestURI", where)
    attrs: dict[str, Any] = {"audit_id": audit_id, "stage": stage, "verb": verb}
    for key, name in (("level", "level"), ("requestURI", "request_uri"), ("userAgent", "user_agent")):
        value = _text(event, key, where)
        if value:
            attrs[name] = _label(value)
    if code is not None:
        attrs["response_code"] = code
    if status and isinstance(status.get("reason"), str) and status["reason"]:
        attrs["response_reason"] = _label(status["reason"])

    actor: dict[str, str] = {}
    username = user.get("username")
    if isinstance(username, str) and username:
        actor["name"] = _label(username)
        actor["type"] = _actor_type(username)
    if isinstance(user.get("uid"), str) and user["uid"]:
        actor["id"] = _label(user["uid"])
    if source_ips and _is_ip(source_ips[0]):
        actor["ip"] = source_ips[0]
    groups = _strings(user.get("groups"), f"{where}user.groups")
    if groups:
        attrs["groups"] = groups
    if len(source_ips) > 1:
        attrs["source_ips"] = source_ips
    if impersonated:
        if isinstance(impersonated.get("username"), str):
            attrs["impersonated_user"] = _label(impersonated["username"])
        impersonated_groups = _strings(impersonated.get("groups"), f"{where}impersonatedUser.groups")
        if impersonated_groups:
            attrs["impersonated_groups"] = impersonated_groups

    envelope: Envelope = {
        "source": {"type": "kubernetes", "id": source_id, "delivery": _label(f"{audit_id}/{stage}")},
        "time": time,
    }
    group = ""
    resource = None
    if object_ref:
        ref = {key: value for key, value in object_ref.items() if isinstance(value, str) and value}
        group, resource = ref.get("apiGroup", ""), ref.get("resource")
        for key, name in (
            ("namespace", "namespace"),
            ("apiGroup", "api_group"),
            ("apiVersion", "api_version"),
            ("resource", "resource"),
            ("subresource", "subresource"),
            ("name", "name"),
        ):
            if key in ref:
                attrs[name] = _label(ref[key])
        action = f"{verb} {resource}" if resource else verb
        if resource and "subresource" in ref:
            action += f"/{ref['subresource']}"
        target: dict[str, str] = {}
        if resource:
            target["type"] = _label(f"{resource}.{group}" if group else resource)
        if "uid" in ref:
            target["id"] = _label(ref["uid"])
        if "name" in ref:
            target["name"] = _label(f"{ref['namespace']}/{ref['name']}" if "namespace" in ref else ref["name"])
        if target:
            envelope["target"] = target
    else:
        path = request_uri.split("?", 1)[0] if request_uri else None
        action = f"{verb} {path}" if path else verb
        if path:
            envelope["target"] = {"type": "url", "name": _label(path)}

    envelope["kind"] = _kind(verb, group, resource, code)
    envelope["action"] = _label(action)
    envelope["outcome"] = _outcome(stage, code)
    if actor:
        envelope["actor"] = actor
    if annotations:
        attrs["annotations"] = {
            str(key): _label(value) if isinstance(value, str) else value for key, value in annotations.items()
        }
    envelope["attrs"] = attrs
    envelope["raw"] = _raw(event, attrs)
    return envelope


def _raw(event: Mapping[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """The Event as sent, less its request/response bodies only if it would be over sealtrail's raw limit."""
    raw = dict(event)
    dropped: list[str] = []
    for key in _BULKY:
        if len(msgspec.json.encode(raw)) <= MAX_RAW_BYTES:
            break
        if key in raw:
            del raw[key]
            dropped.append(key)
    if dropped:
        attrs["raw_dropped"] = dropped
    return raw
