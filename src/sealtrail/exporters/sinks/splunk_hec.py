"""Splunk HTTP Event Collector sender: `POST /services/collector/event`, `Authorization: Splunk <token>`.

A batch is one body of concatenated JSON event objects; each carries the
ECS (or OCSF) document as `event`, the event time in epoch seconds, and the
indexed fields `sealtrail_index` and `sealtrail_leaf_hash` (Splunk has no
idempotent write: a retried batch can index an event twice; deduplicate on
sealtrail_leaf_hash in searches). With indexer acknowledgement (`ack`), the
batch is acknowledged only once `/services/collector/ack` reports its ackId
indexed; an ack that does not come within `ack_timeout` resends the batch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from ..ecs import to_ecs
from ..ocsf import to_ocsf
from ..record import ForwardRecord, epoch_millis
from .base import DeadLetter, DeliveryError, bisect_refusals
from .http import check_response, post

__all__ = ["FORMATS", "SplunkHecSink", "hec_event"]

FORMATS: dict[str, Callable[[ForwardRecord], dict[str, Any]]] = {"ecs": to_ecs, "ocsf": to_ocsf}


def hec_event(
    record: ForwardRecord, *, fmt: str = "ecs", sourcetype: str | None = None, index: str | None = None
) -> dict[str, Any]:
    """One HEC event object for one record."""
    item: dict[str, Any] = {
        "source": "sealtrail",
        "sourcetype": sourcetype or f"sealtrail:{fmt}",
        "event": FORMATS[fmt](record),
        "fields": {"sealtrail_index": str(record.index), "sealtrail_leaf_hash": record.leaf_hex},
    }
    millis = epoch_millis(record.text("time"))
    if millis is not None:
        item["time"] = millis / 1000
    host = record.text("source", "id")
    if host:
        item["host"] = host
    if index:
        item["index"] = index
    return item


class SplunkHecSink:
    """Batches to one HEC endpoint; the client carries the `Authorization: Splunk <token>` header."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        *,
        fmt: str = "ecs",
        index: str | None = None,
        sourcetype: str | None = None,
        ack: bool = False,
        ack_timeout: float = 60.0,
        ack_poll: float = 1.0,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"HEC format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        base = url.rstrip("/")
        for suffix in ("/services/collector/event", "/services/collector"):
            base = base.removesuffix(suffix)
        self.client = client
        self.event_url = base + "/services/collector/event"
        self.ack_url = base + "/services/collector/ack"
        self.fmt, self.index, self.sourcetype = fmt, index, sourcetype
        self.channel = str(uuid.uuid4()) if ack else None
        self.ack_timeout, self.ack_poll = ack_timeout, ack_poll

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.channel:
            headers["X-Splunk-Request-Channel"] = self.channel
        return headers

    def send(self, records: Sequence[ForwardRecord]) -> list[DeadLetter]:
        return bisect_refusals(records, self._post)

    def _post(self, records: Sequence[ForwardRecord]) -> None:
        body = b"".join(
            orjson.dumps(hec_event(record, fmt=self.fmt, sourcetype=self.sourcetype, index=self.index))
            for record in records
        )
        response = post(self.client, self.event_url, body, "splunk hec", records, headers=self._headers())
        check_response(response, "splunk hec", records)
        if self.channel is None:
            return
        try:
            ack_id = response.json()["ackId"]
        except (ValueError, KeyError, TypeError):
            raise DeliveryError("splunk hec: ack is on but the response has no ackId", records) from None
        self._wait_for_ack(ack_id, records)

    def _wait_for_ack(self, ack_id: Any, records: Sequence[ForwardRecord]) -> None:
        deadline = time.monotonic() + self.ack_timeout
        body = orjson.dumps({"acks": [ack_id]})
        while True:
            response = post(self.client, self.ack_url, body, "splunk hec ack", records, headers=self._headers())
            check_response(response, "splunk hec ack", records)
            try:
                acked = response.json()["acks"].get(str(ack_id)) is True
            except (ValueError, KeyError, TypeError, AttributeError):
                raise DeliveryError("splunk hec ack: malformed response", records) from None
            if acked:
                return
            if time.monotonic() >= deadline:
                raise DeliveryError(f"splunk hec: ackId {ack_id} not indexed within {self.ack_timeout:g}s", records)
            time.sleep(self.ack_poll)

    def close(self) -> None:
        self.client.close()
