"""ECS documents checked against Elastic's own field definitions (npm @elastic/ecs EcsFlat)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from _support import devsecops_event, devsecops_events, rfc6962_leaf
from sealtrail.event import prepare
from sealtrail.exporters.ecs import ECS_VERSION, to_ecs
from sealtrail.exporters.record import ForwardRecord

from ._ecs_schema import ecs_flat
from ._records import ORIGIN, records

CUSTOM = ("sealtrail.",)
"""Our own namespace (documented in docs/forwarders.md); everything else must be ECS."""


def _leaves(document: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "labels":
            yield from _leaves(value, name + ".")
        else:
            yield name, value


def _check_type(name: str, field: dict[str, Any], value: Any) -> None:
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list):
        assert "array" in field.get("normalize", []), f"{name} is not an array field in ECS"
    for item in values:
        kind = field["type"]
        if kind in ("keyword", "constant_keyword", "wildcard", "match_only_text", "text"):
            assert isinstance(item, str), f"{name}: {item!r} should be a string"
        elif kind == "date":
            assert datetime.fromisoformat(item.replace("Z", "+00:00")).tzinfo is not None, name
        elif kind == "long":
            assert isinstance(item, int) and not isinstance(item, bool), name
        elif kind == "ip":
            ipaddress.ip_address(item)
        elif kind == "object":
            assert isinstance(item, dict) and all(isinstance(v, str) for v in item.values()), name
        else:
            pytest.fail(f"{name}: unexpected ECS type {kind}")


def _check_document(document: dict[str, Any]) -> None:
    fields = ecs_flat()
    assert document["ecs"]["version"] == ECS_VERSION
    for name, value in _leaves(document):
        if name.startswith(CUSTOM):
            continue
        assert name in fields, f"{name} is not an ECS field"
        _check_type(name, fields[name], value)
    event = document["event"]
    for categorisation in ("kind", "outcome"):
        allowed = {entry["name"] for entry in fields[f"event.{categorisation}"]["allowed_values"]}
        assert event[categorisation] in allowed, (categorisation, event[categorisation])
    types = {entry["name"] for entry in fields["event.type"]["allowed_values"]}
    assert set(event["type"]) <= types
    categories = {entry["name"]: entry for entry in fields["event.category"]["allowed_values"]}
    for category in event.get("category", []):
        assert category in categories, category
        expected = set(categories[category].get("expected_event_types", []))
        assert set(event["type"]) <= expected, (category, event["type"], expected)


def test_every_kind_of_the_devsecops_stream_is_valid_ecs() -> None:
    prepared = devsecops_events(0, 40, "ecs")
    for record, event in zip(records(prepared), prepared, strict=True):
        document = to_ecs(record)
        _check_document(document)
        assert document["sealtrail"]["index"] == record.index
        assert document["sealtrail"]["leaf_hash"] == rfc6962_leaf(event.entry).hex()
        assert document["sealtrail"]["origin"] == ORIGIN


def test_a_redaction_record_is_valid_ecs_naming_its_place() -> None:
    document = to_ecs(ForwardRecord(17, b"\x42" * 32, ORIGIN, None, {"id": "x", "reason": "gdpr", "record_index": 90}))
    _check_document(document)
    assert document["sealtrail"] == {
        "index": 17,
        "leaf_hash": "42" * 32,
        "origin": ORIGIN,
        "redacted": True,
        "kind": "sealtrail.redacted",
        "redaction": {"id": "x", "reason": "gdpr", "record_index": 90},
    }
    assert document["event"]["id"] == "x"


def test_fields_carry_what_the_envelope_says() -> None:
    failure = records([prepare(devsecops_event(4))])[0]  # sshd failed password for root
    document = to_ecs(failure)
    assert document["event"]["category"] == ["authentication"] and document["event"]["type"] == ["start"]
    assert document["event"]["outcome"] == "failure" and document["event"]["action"] == "sshd.failed_password"
    assert document["user"]["name"] == "root" and document["source"]["ip"] == "203.0.113.5"
    assert document["host"]["name"] == "bastion-01.acme.internal" and document["labels"] == {"env": "prod"}
    assert document["@timestamp"] == failure.get("time") and document["event"]["created"] == failure.get("received")
    assert document["event"]["id"] == failure.get("id")
    assert document["related"] == {"user": ["root"], "ip": ["203.0.113.5"], "hosts": ["bastion-01.acme.internal"]}

    grant = to_ecs(records([prepare(devsecops_event(5))])[0])  # create rolebindings
    assert grant["event"]["category"] == ["iam"] and grant["event"]["type"] == ["creation"]
    alert = to_ecs(records([prepare(devsecops_event(7))])[0])  # secret scanning alert
    assert alert["event"]["kind"] == "alert" and alert["sealtrail"]["attrs"]["secret_type"] == "aws_access_key_id"
    deploy = records([prepare(devsecops_event(3))])[0]
    document = to_ecs(deploy)
    assert document["event"]["category"] == ["package"] and "original" not in document["event"]
    assert document["sealtrail"]["source"] == deploy.get("source")


def test_raw_payload_becomes_event_original_as_json_text() -> None:
    event = dict(devsecops_event(9), raw={"login": {"user": "u-9", "mfa": True}})
    record = records([prepare(event)])[0]
    document = to_ecs(record)
    _check_document(document)
    assert orjson.loads(document["event"]["original"]) == {"login": {"user": "u-9", "mfa": True}}
