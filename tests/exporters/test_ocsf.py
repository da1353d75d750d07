"""OCSF output validated with jsonschema against the OCSF schema of PyPI `ocsf-json-schema`.

The package ships schema.ocsf.io's export of each OCSF version; OcsfJsonSchemaEmbedded turns a
class into a self-contained JSON Schema (draft 2020-12, objects under $defs, enums for every
*_id, additionalProperties false). Events come from the DevSecOps stream and from real payloads
run through the source adapters: GitHub's webhook examples and audit-log examples, and sshd lines
from real systems (fail2ban's samples).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from _github_fixtures import audit_log_examples, webhook_examples
from _support import devsecops_event, devsecops_events
from _syslog_fixtures import LOG_FILES, fail2ban_logs, samples
from sealtrail.event import PreparedEvent, prepare
from sealtrail.exporters.ocsf import OCSF_VERSION, to_ocsf
from sealtrail.exporters.record import ForwardRecord
from sealtrail.sources import github, hec, syslog

from ._records import ORIGIN, records

EXPECTED_CLASSES = {0, 2004, 3001, 3002, 6002, 6003}


@cache
def _schema() -> OcsfJsonSchemaEmbedded:
    return OcsfJsonSchemaEmbedded(get_ocsf_schema(OCSF_VERSION))


@cache
def _validator(class_uid: int) -> Draft202012Validator:
    schema = _schema().get_class_schema(_schema().lookup_class_name_from_uid(class_uid))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _validate(events: Iterable[dict[str, Any]]) -> Counter[int]:
    """Validate each event against its class; the count of events per class_uid."""
    produced: Counter[int] = Counter()
    for event in events:
        errors = sorted(_validator(event["class_uid"]).iter_errors(event), key=lambda e: list(e.path))
        assert not errors, f"class {event['class_uid']}: {[f'{list(e.path)}: {e.message}' for e in errors[:3]]}"
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        assert event["metadata"]["version"] == OCSF_VERSION
        produced[event["class_uid"]] += 1
    return produced


def _ocsf(prepared: list[PreparedEvent]) -> list[dict[str, Any]]:
    out = []
    for record, event in zip(records(prepared, start=1000), prepared, strict=True):
        document = to_ocsf(record)
        assert document["metadata"]["uid"] == event.leaf_hash.hex()
        assert document["metadata"]["sequence"] == record.index
        assert document["metadata"]["log_name"] == ORIGIN
        out.append(document)
    return out


def test_the_devsecops_stream_validates_and_covers_every_class_we_map_to() -> None:
    prepared = devsecops_events(0, 60, "ocsf")
    redacted = ForwardRecord(7, b"\x07" * 32, ORIGIN, None, {"id": "e", "reason": "retention", "record_index": 70})
    produced = _validate([*_ocsf(prepared), to_ocsf(redacted)])
    assert set(produced) == EXPECTED_CLASSES


def test_github_webhook_examples_validate() -> None:
    prepared: list[PreparedEvent] = []
    for number, example in enumerate(webhook_examples()):
        for envelope in github.to_envelopes(example.event, f"delivery-{number}", example.payload, "acme-github"):
            prepared.append(prepare(envelope))
    produced = _validate(_ocsf(prepared))
    assert len(prepared) > 100 and {6003, 3001, 2004} <= set(produced), produced


def test_github_audit_log_events_through_hec_validate() -> None:
    items = [{"event": event} for event in audit_log_examples()]
    prepared = [prepare(envelope) for envelope in hec.to_envelopes(items, "ghe-audit")]
    produced = _validate(_ocsf(prepared))
    assert len(prepared) == len(items) > 0 and sum(produced.values()) == len(items)


def test_real_sshd_lines_validate_as_authentication() -> None:
    directory = fail2ban_logs()
    received = datetime(2005, 8, 14, 10, tzinfo=UTC)  # when fail2ban's samples are read as received
    relayed = {"sshd-journal": "<38>Aug 14 10:00:00 ", "selinux-ssh": "<85>Aug 14 10:00:00 srv audisp-syslog: "}
    prepared: list[PreparedEvent] = []
    for name in LOG_FILES:
        for sample in samples(directory, name):
            line = relayed.get(name, "") + sample.line  # the header a relay gives journal and audit records
            message = syslog.parse_message(line.encode(), received=received)
            prepared.extend(prepare(envelope) for envelope in syslog.to_envelopes(message, "bastion-01"))
    documents = _ocsf(prepared)
    produced = _validate(documents)
    assert produced[3002] > 50, produced
    failures = [d for d in documents if d["class_uid"] == 3002 and d["status_id"] == 2]
    assert failures and all(d["activity_id"] == 1 and d["user"] for d in failures)
    assert any("src_endpoint" in d for d in failures)


def test_classes_and_activities_follow_the_envelope() -> None:
    def one(n: int, **changes: Any) -> dict[str, Any]:
        return to_ocsf(records([prepare(dict(devsecops_event(n), **changes))])[0])

    login = one(9)
    assert (login["class_uid"], login["activity_id"], login["status_id"]) == (3002, 1, 1)
    assert login["is_mfa"] is True and login["src_endpoint"] == {"ip": "2001:db8::17"}
    assert one(9, kind="auth.logout", action="oidc.logout")["activity_id"] == 2
    grant = one(5)
    assert (grant["class_uid"], grant["activity_id"], grant["policy"]) == (3001, 7, {"name": "edit"})
    assert one(5, action="delete rolebindings")["activity_id"] == 8
    assert one(5, action="user.password_change", target={"type": "user", "id": "bob"})["activity_id"] == 3
    assert one(5, action="user.create", target={"type": "user", "id": "bob"})["activity_id"] == 1
    read = one(16)  # a secret read refused with 403
    assert (read["class_uid"], read["activity_id"], read["api"]["operation"]) == (6003, 2, "secret.read")
    assert read["http_response"] == {"code": 403} and read["status_id"] == 2
    deploy = one(3)
    assert (deploy["class_uid"], deploy["activity_id"], deploy["app"]["version"]) == (6002, 8, "v2.0.3")
    finding = one(7)
    assert (finding["class_uid"], finding["activity_id"]) == (2004, 1)
    assert finding["finding_info"]["title"] == "aws_access_key_id" and finding["severity_id"] == 4
    assert one(7, action="secret_scanning_alert.resolved")["activity_id"] == 3
    other = one(0, kind="hec.event", action=None)
    assert (other["class_uid"], other["activity_id"], other["type_uid"]) == (0, 99, 99)
    _validate([login, grant, read, deploy, finding, other])


def test_index_and_leaf_hash_sit_in_metadata_and_unmapped() -> None:
    record = records([prepare(devsecops_event(2))], start=41)[0]
    document = to_ocsf(record)
    assert document["metadata"]["uid"] == record.leaf_hex and document["metadata"]["sequence"] == 41
    assert document["unmapped"]["sealtrail"]["index"] == 41
    assert document["unmapped"]["sealtrail"]["leaf_hash"] == record.leaf_hex
    assert document["metadata"]["original_time"] == record.get("time")


@pytest.mark.parametrize("version", ["1.5.0"])
def test_the_schema_package_is_the_version_we_claim(version: str) -> None:
    assert version == OCSF_VERSION and get_ocsf_schema(version)["version"] == version
