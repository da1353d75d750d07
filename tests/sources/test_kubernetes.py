"""Kubernetes source: the kube-apiserver audit webhook (audit.k8s.io/v1 EventList) mapped to envelopes.

No public PyPI or npm package ships recorded audit events, so the events
below are built field by field after the audit.k8s.io/v1 API reference and
the apiserver's audit filters: a webhook EventList carries its items without
kind/apiVersion (the log backend writes them on each Event), RequestReceived
has no responseStatus and no authorization annotations, failed
authentication is recorded at stage ResponseStarted with an empty user and
the message "Authentication failed, attempted: ...", and requestObject /
responseObject appear only at level RequestResponse (requestObject also at
Request).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sealtrail.event import MAX_RAW_BYTES, delivery_id, prepare
from sealtrail.sources.base import SourcePayloadError
from sealtrail.sources.kubernetes import to_envelopes

SOURCE = "prod-cluster"
KUBECTL = "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819"
ADMIN = {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]}
ADMIN_ALLOWED = {
    "authorization.k8s.io/decision": "allow",
    "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole '
    '"cluster-admin" to Group "kubeadm:cluster-admins"',
}

LIST_PODS_RECEIVED: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "5b9d3c9e-8c0a-4b9b-9a57-0f8f3b1d2c11",
    "stage": "RequestReceived",
    "requestURI": "/api/v1/namespaces/default/pods?limit=500",
    "verb": "list",
    "user": ADMIN,
    "sourceIPs": ["192.168.49.1"],
    "userAgent": KUBECTL,
    "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
    "requestReceivedTimestamp": "2024-03-12T09:41:07.119532Z",
    "stageTimestamp": "2024-03-12T09:41:07.119532Z",
}
LIST_PODS_COMPLETE: dict[str, Any] = {
    **LIST_PODS_RECEIVED,
    "stage": "ResponseComplete",
    "responseStatus": {"metadata": {}, "code": 200},
    "stageTimestamp": "2024-03-12T09:41:07.124873Z",
    "annotations": ADMIN_ALLOWED,
}
CREATE_CLUSTERROLEBINDING: dict[str, Any] = {
    "level": "RequestResponse",
    "auditID": "0c4f6f0e-3a52-4d55-b6a4-2a1e8f0b7d93",
    "stage": "ResponseComplete",
    "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?fieldManager=kubectl-create"
    "&fieldValidation=Strict",
    "verb": "create",
    "user": {
        "username": "jane@example.com",
        "groups": ["platform-admins", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=5f3c1d9a"]},
    },
    "sourceIPs": ["10.20.0.15"],
    "userAgent": KUBECTL,
    "objectRef": {
        "resource": "clusterrolebindings",
        "name": "ci-deployer-admin",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
    },
    "responseStatus": {"metadata": {}, "code": 201},
    "requestObject": {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "ci-deployer-admin", "creationTimestamp": None},
        "subjects": [{"kind": "ServiceAccount", "name": "ci-deployer", "namespace": "ci"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    },
    "responseObject": {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {
            "name": "ci-deployer-admin",
            "uid": "8e1f6a0c-52b7-4c1e-9d1e-6c3b8c0d4a77",
            "resourceVersion": "48213",
            "creationTimestamp": "2024-03-12T09:45:02Z",
            "managedFields": [
                {
                    "manager": "kubectl-create",
                    "operation": "Update",
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "time": "2024-03-12T09:45:02Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:roleRef": {}, "f:subjects": {}},
                }
            ],
        },
        "subjects": [{"kind": "ServiceAccount", "name": "ci-deployer", "namespace": "ci"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    },
    "requestReceivedTimestamp": "2024-03-12T09:45:02.771043Z",
    "stageTimestamp": "2024-03-12T09:45:02.780914Z",
    "annotations": {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "platform-admins" of ClusterRole '
        '"cluster-admin" to Group "platform-admins"',
    },
}
DELETE_ROLEBINDING: dict[str, Any] = {
    "level": "Request",
    "auditID": "9a7e2b55-1f0d-4f4e-8f63-61c1f0e2a5b4",
    "stage": "ResponseComplete",
    "requestURI": "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings/auditors",
    "verb": "delete",
    "user": ADMIN,
    "sourceIPs": ["192.168.49.1"],
    "userAgent": KUBECTL,
    "objectRef": {
        "resource": "rolebindings",
        "namespace": "payments",
        "name": "auditors",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
    },
    "responseStatus": {"metadata": {}, "status": "Success", "code": 200},
    "requestObject": {
        "kind": "DeleteOptions",
        "apiVersion": "meta.k8s.io/__internal",
        "propagationPolicy": "Background",
    },
    "requestReceivedTimestamp": "2024-03-12T09:50:11.402210Z",
    "stageTimestamp": "2024-03-12T09:50:11.411874Z",
    "annotations": ADMIN_ALLOWED,
}
FORBIDDEN_SECRETS: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "d3b07384-d9a0-4e5b-8f4a-4c7c4e3a9f21",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/kube-system/secrets?limit=500",
    "verb": "list",
    "user": {
        "username": "system:serviceaccount:default:default",
        "uid": "3f0c2a8e-7b0d-4a3c-9e55-0d9b6f1c2e44",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
        "extra": {
            "authentication.kubernetes.io/pod-name": ["debug-7d9c8b5f4-xk2lp"],
            "authentication.kubernetes.io/pod-uid": ["a1c7e9f0-33d2-4b8e-8f10-5e6d7c8b9a01"],
        },
    },
    "sourceIPs": ["10.244.1.17"],
    "userAgent": KUBECTL,
    "objectRef": {"resource": "secrets", "namespace": "kube-system", "apiVersion": "v1"},
    "responseStatus": {
        "metadata": {},
        "status": "Failure",
        "message": 'secrets is forbidden: User "system:serviceaccount:default:default" cannot list resource '
        '"secrets" in API group "" in the namespace "kube-system"',
        "reason": "Forbidden",
        "details": {"kind": "secrets"},
        "code": 403,
    },
    "requestReceivedTimestamp": "2024-03-12T10:02:44.050112Z",
    "stageTimestamp": "2024-03-12T10:02:44.051020Z",
    "annotations": {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""},
}
UNAUTHENTICATED: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "6e1c5f2a-0b8d-4d7e-a3f9-2c4b6d8e0f13",
    "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/default/pods",
    "verb": "list",
    "user": {},
    "sourceIPs": ["203.0.113.50"],
    "userAgent": "curl/8.5.0",
    "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "message": "Authentication failed, attempted: bearer", "code": 401},
    "requestReceivedTimestamp": "2024-03-12T10:05:30.880411Z",
    "stageTimestamp": "2024-03-12T10:05:30.880697Z",
}
IMPERSONATED_GET: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "b2f1e0d9-4c3b-4a29-8e17-6f5d4c3b2a10",
    "stage": "ResponseComplete",
    "requestURI": "/apis/apps/v1/namespaces/web/deployments/frontend",
    "verb": "get",
    "user": ADMIN,
    "impersonatedUser": {"username": "jane", "groups": ["developers", "system:authenticated"]},
    "sourceIPs": ["192.168.49.1"],
    "userAgent": KUBECTL,
    "objectRef": {
        "resource": "deployments",
        "namespace": "web",
        "name": "frontend",
        "apiGroup": "apps",
        "apiVersion": "v1",
    },
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2024-03-12T10:10:01.000321Z",
    "stageTimestamp": "2024-03-12T10:10:01.004532Z",
    "annotations": {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by RoleBinding "developers-view/web" of ClusterRole "view" '
        'to Group "developers"',
    },
}
GET_SECRET: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "e7d6c5b4-a392-4817-9f6e-5d4c3b2a1908",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/payments/secrets/db-credentials",
    "verb": "get",
    "user": {
        "username": "system:serviceaccount:payments:api",
        "uid": "77aa2b1c-0d3e-4f5a-8b9c-1d2e3f4a5b6c",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:payments", "system:authenticated"],
    },
    "sourceIPs": ["10.244.2.31"],
    "userAgent": "payments-api/2.4.1",
    "objectRef": {"resource": "secrets", "namespace": "payments", "name": "db-credentials", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2024-03-12T10:12:40.310001Z",
    "stageTimestamp": "2024-03-12T10:12:40.312456Z",
    "annotations": {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by RoleBinding "api-secrets/payments" of Role '
        '"secret-reader" to ServiceAccount "api/payments"',
    },
}
EXEC: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/web/pods/frontend-6c9f7d8b5-q2w3e/exec?command=sh&container=app&stdin=true"
    "&stdout=true&tty=true",
    "verb": "create",
    "user": ADMIN,
    "sourceIPs": ["192.168.49.1", "10.0.0.2"],
    "userAgent": KUBECTL,
    "objectRef": {
        "resource": "pods",
        "namespace": "web",
        "name": "frontend-6c9f7d8b5-q2w3e",
        "apiVersion": "v1",
        "subresource": "exec",
    },
    "responseStatus": {"metadata": {}, "code": 101},
    "requestReceivedTimestamp": "2024-03-12T10:20:00.500000Z",
    "stageTimestamp": "2024-03-12T10:20:00.530112Z",
    "annotations": ADMIN_ALLOWED,
}
HEALTHZ: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "f0e1d2c3-b4a5-4967-8877-665544332211",
    "stage": "ResponseComplete",
    "requestURI": "/healthz?verbose",
    "verb": "get",
    "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
    "sourceIPs": ["10.0.0.1"],
    "userAgent": "kube-probe/1.29",
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2024-03-12T10:21:00.000100Z",
    "stageTimestamp": "2024-03-12T10:21:00.000900Z",
    "annotations": {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of '
        'ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"',
    },
}
NODE_STATUS_PANIC: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "abcdefab-cdef-4abc-8def-abcdefabcdef",
    "stage": "Panic",
    "requestURI": "/api/v1/nodes/worker-1/status?timeout=10s",
    "verb": "patch",
    "user": {"username": "system:node:worker-1", "groups": ["system:nodes", "system:authenticated"]},
    "sourceIPs": ["10.0.1.11"],
    "userAgent": "kubelet/v1.29.2 (linux/amd64) kubernetes/4b8e819",
    "objectRef": {"resource": "nodes", "name": "worker-1", "apiVersion": "v1", "subresource": "status"},
    "responseStatus": {
        "metadata": {},
        "status": "Failure",
        "message": "APIServer panic'd: runtime error: invalid memory address or nil pointer dereference",
        "reason": "InternalError",
        "code": 500,
    },
    "requestReceivedTimestamp": "2024-03-12T10:30:00.100000Z",
    "stageTimestamp": "2024-03-12T10:30:00.100700Z",
}
ALL = [
    LIST_PODS_RECEIVED,
    LIST_PODS_COMPLETE,
    CREATE_CLUSTERROLEBINDING,
    DELETE_ROLEBINDING,
    FORBIDDEN_SECRETS,
    UNAUTHENTICATED,
    IMPERSONATED_GET,
    GET_SECRET,
    EXEC,
    HEALTHZ,
    NODE_STATUS_PANIC,
]


def event_list(*items: dict[str, Any]) -> dict[str, Any]:
    """What kube-apiserver's webhook backend POSTs."""
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": list(items)}


def one(event: dict[str, Any]) -> dict[str, Any]:
    (envelope,) = to_envelopes(event_list(event), SOURCE)
    return envelope


def test_one_envelope_per_event_each_a_valid_sealtrail_event() -> None:
    envelopes = to_envelopes(event_list(*ALL), SOURCE)
    assert [env["raw"]["auditID"] for env in envelopes] == [event["auditID"] for event in ALL]
    for env, event in zip(envelopes, ALL, strict=True):
        prepared = prepare(env)
        assert env["time"] == event["stageTimestamp"]
        assert env["source"] == {"type": "kubernetes", "id": SOURCE, "delivery": f"{event['auditID']}/{event['stage']}"}
        assert prepared.id == delivery_id("kubernetes", SOURCE, f"{event['auditID']}/{event['stage']}")


def test_dedup_key_is_audit_id_and_stage() -> None:
    received, complete = to_envelopes(event_list(LIST_PODS_RECEIVED, LIST_PODS_COMPLETE), SOURCE)
    assert received["source"]["delivery"] == "5b9d3c9e-8c0a-4b9b-9a57-0f8f3b1d2c11/RequestReceived"
    assert complete["source"]["delivery"] == "5b9d3c9e-8c0a-4b9b-9a57-0f8f3b1d2c11/ResponseComplete"
    assert prepare(received).id != prepare(complete).id
    (resent,) = to_envelopes(event_list(LIST_PODS_COMPLETE), SOURCE)  # the apiserver retrying a batch
    assert prepare(resent).id == prepare(complete).id
    assert prepare(resent).keys == prepare(complete).keys


def test_list_pods_request_received_then_complete() -> None:
    received, complete = to_envelopes(event_list(LIST_PODS_RECEIVED, LIST_PODS_COMPLETE), SOURCE)
    assert (received["kind"], received["action"], received["outcome"]) == ("api.request", "list pods", "unknown")
    assert (complete["kind"], complete["action"], complete["outcome"]) == ("api.request", "list pods", "success")
    assert complete["actor"] == {"name": "kubernetes-admin", "type": "user", "ip": "192.168.49.1"}
    assert complete["target"] == {"type": "pods"}
    assert complete["attrs"] == {
        "audit_id": "5b9d3c9e-8c0a-4b9b-9a57-0f8f3b1d2c11",
        "stage": "ResponseComplete",
        "verb": "list",
        "level": "Metadata",
        "request_uri": "/api/v1/namespaces/default/pods?limit=500",
        "user_agent": KUBECTL,
        "response_code": 200,
        "groups": ["kubeadm:cluster-admins", "system:authenticated"],
        "namespace": "default",
        "api_version": "v1",
        "resource": "pods",
        "annotations": ADMIN_ALLOWED,
    }
    assert "response_code" not in received["attrs"] and "annotations" not in received["attrs"]
    assert complete["raw"] == LIST_PODS_COMPLETE


def test_rbac_binding_created_is_an_access_change_with_its_bodies_in_raw() -> None:
    env = one(CREATE_CLUSTERROLEBINDING)
    assert (env["kind"], env["action"], env["outcome"]) == (
        "access.change",
        "create clusterrolebindings",
        "success",
    )
    assert env["target"] == {"type": "clusterrolebindings.rbac.authorization.k8s.io", "name": "ci-deployer-admin"}
    assert env["actor"] == {"name": "jane@example.com", "type": "user", "ip": "10.20.0.15"}
    assert env["raw"]["requestObject"]["roleRef"]["name"] == "cluster-admin"
    assert env["raw"]["responseObject"]["metadata"]["uid"] == "8e1f6a0c-52b7-4c1e-9d1e-6c3b8c0d4a77"
    assert env["attrs"]["response_code"] == 201 and env["attrs"]["level"] == "RequestResponse"


def test_rbac_binding_deleted_in_a_namespace() -> None:
    env = one(DELETE_ROLEBINDING)
    assert (env["kind"], env["action"], env["outcome"]) == ("access.change", "delete rolebindings", "success")
    assert env["target"] == {"type": "rolebindings.rbac.authorization.k8s.io", "name": "payments/auditors"}


def test_reading_rbac_is_not_an_access_change() -> None:
    event = copy.deepcopy(DELETE_ROLEBINDING)
    event["verb"] = "get"
    event.pop("requestObject")
    assert one(event)["kind"] == "api.request"


def test_forbidden_rbac_change_is_an_auth_failure() -> None:
    event = copy.deepcopy(CREATE_CLUSTERROLEBINDING)
    event["responseStatus"] = {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403}
    event["annotations"] = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
    env = one(event)
    assert (env["kind"], env["action"], env["outcome"]) == ("auth.failure", "create clusterrolebindings", "failure")


def test_forbidden_request_is_an_auth_failure() -> None:
    env = one(FORBIDDEN_SECRETS)
    assert (env["kind"], env["action"], env["outcome"]) == ("auth.failure", "list secrets", "failure")
    assert env["actor"] == {
        "name": "system:serviceaccount:default:default",
        "type": "serviceaccount",
        "id": "3f0c2a8e-7b0d-4a3c-9e55-0d9b6f1c2e44",
        "ip": "10.244.1.17",
    }
    assert env["attrs"]["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert (env["attrs"]["response_code"], env["attrs"]["response_reason"]) == (403, "Forbidden")


def test_failed_authentication_is_an_auth_failure_without_a_user() -> None:
    env = one(UNAUTHENTICATED)
    assert (env["kind"], env["outcome"], env["attrs"]["stage"]) == ("auth.failure", "failure", "ResponseStarted")
    assert env["actor"] == {"ip": "203.0.113.50"}
    assert "groups" not in env["attrs"]


def test_impersonation_keeps_the_real_user_as_actor() -> None:
    env = one(IMPERSONATED_GET)
    assert (env["kind"], env["action"], env["outcome"]) == ("api.request", "get deployments", "success")
    assert env["actor"]["name"] == "kubernetes-admin"
    assert env["attrs"]["impersonated_user"] == "jane"
    assert env["attrs"]["impersonated_groups"] == ["developers", "system:authenticated"]
    assert env["target"] == {"type": "deployments.apps", "name": "web/frontend"}


def test_secret_read_is_a_secret_access() -> None:
    env = one(GET_SECRET)
    assert (env["kind"], env["action"], env["outcome"]) == ("secret.access", "get secrets", "success")
    assert env["target"] == {"type": "secrets", "name": "payments/db-credentials"}
    assert env["actor"]["type"] == "serviceaccount"


def test_exec_upgrade_is_a_success_on_the_subresource() -> None:
    env = one(EXEC)
    assert (env["kind"], env["action"], env["outcome"]) == ("api.request", "create pods/exec", "success")
    assert env["attrs"]["subresource"] == "exec"
    assert env["attrs"]["source_ips"] == ["192.168.49.1", "10.0.0.2"]
    assert env["actor"]["ip"] == "192.168.49.1"


def test_non_resource_url() -> None:
    env = one(HEALTHZ)
    assert (env["kind"], env["action"], env["outcome"]) == ("api.request", "get /healthz", "success")
    assert env["target"] == {"type": "url", "name": "/healthz"}
    assert env["actor"]["type"] == "anonymous"


def test_panic_is_a_failure_by_a_node() -> None:
    env = one(NODE_STATUS_PANIC)
    assert (env["action"], env["outcome"], env["actor"]["type"]) == ("patch nodes/status", "failure", "node")
    assert env["target"] == {"type": "nodes", "name": "worker-1"}


def test_a_single_event_as_the_log_backend_writes_it_is_accepted() -> None:
    event = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", **GET_SECRET}
    (env,) = to_envelopes(event, SOURCE)
    assert env["kind"] == "secret.access" and env["raw"] == event
    prepare(env)


def test_list_items_may_carry_their_type() -> None:
    (env,) = to_envelopes(event_list({"kind": "Event", "apiVersion": "audit.k8s.io/v1", **EXEC}), SOURCE)
    assert env["action"] == "create pods/exec"


@pytest.mark.parametrize("items", [[], None])
def test_an_empty_list_gives_no_envelopes(items: list[Any] | None) -> None:
    assert to_envelopes({**event_list(), "items": items}, SOURCE) == []


def test_an_event_over_the_raw_limit_drops_its_bodies_not_the_event() -> None:
    event = copy.deepcopy(CREATE_CLUSTERROLEBINDING)
    event["responseObject"]["metadata"]["annotations"] = {"huge": "x" * (MAX_RAW_BYTES + 10)}
    env = one(event)
    assert "responseObject" not in env["raw"] and env["raw"]["requestObject"] == event["requestObject"]
    assert env["attrs"]["raw_dropped"] == ["responseObject"]
    prepare(env)
    assert "raw_dropped" not in one(CREATE_CLUSTERROLEBINDING)["attrs"]


def _without(key: str) -> dict[str, Any]:
    event = copy.deepcopy(LIST_PODS_COMPLETE)
    del event[key]
    return event_list(event)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({**event_list(), "apiVersion": "audit.k8s.io/v1beta1"}, "apiVersion"),
        ({**event_list(), "kind": "Policy"}, "kind"),
        ({**event_list(), "items": {"a": 1}}, "items"),
        (event_list("not an event"), r"items\[0\]"),  # type: ignore[arg-type]
        (event_list({**LIST_PODS_COMPLETE, "kind": "Pod"}), "kind"),
        (_without("auditID"), r"items\[0\]\.auditID: required"),
        (_without("stage"), "stage: required"),
        (_without("verb"), "verb: required"),
        (event_list({**LIST_PODS_COMPLETE, "stage": "Done"}), "stage"),
        (event_list({**LIST_PODS_COMPLETE, "stageTimestamp": "yesterday"}), "stageTimestamp"),
        (event_list({**LIST_PODS_COMPLETE, "stageTimestamp": "2024-03-12T09:41:07"}), "stageTimestamp"),
        (event_list({**LIST_PODS_COMPLETE, "user": "admin"}), "user"),
        (event_list({**LIST_PODS_COMPLETE, "sourceIPs": "192.168.49.1"}), "sourceIPs"),
        (event_list({**LIST_PODS_COMPLETE, "responseStatus": {"code": "200"}}), "responseStatus.code"),
    ],
)
def test_malformed_bodies_are_rejected(body: Any, message: str) -> None:
    with pytest.raises(SourcePayloadError, match=message):
        to_envelopes(body, SOURCE)


def test_a_stage_timestamp_missing_falls_back_to_the_time_received() -> None:
    event = copy.deepcopy(LIST_PODS_RECEIVED)
    del event["stageTimestamp"]
    assert one(event)["time"] == "2024-03-12T09:41:07.119532Z"


def test_a_source_ip_that_is_not_an_address_stays_out_of_the_actor() -> None:
    env = one({**LIST_PODS_COMPLETE, "sourceIPs": ["unknown"]})
    assert "ip" not in env["actor"]
    prepare(env)
