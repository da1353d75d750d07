"""Elasticsearch / OpenSearch `_bulk` with `create` and `_id` = the leaf hash (hex): retries are idempotent.

One NDJSON request per batch (`{"create": {"_index": …, "_id": …}}` then the
ECS document). Per item: 201 is stored; 409 (version conflict: that `_id`
is already there, from an earlier try) counts as stored; 429 and 5xx are
retried; 401/403/404 (privileges, missing index) are retried until fixed;
any other item error (a mapping conflict, 400) is a dead letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from ..ecs import to_ecs
from ..record import ForwardRecord
from .base import DeadLetter, DeliveryError, bisect_refusals
from .http import check_response, post

__all__ = ["ElasticsearchSink", "bulk_body"]

_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"
_RETRY_ITEM = frozenset({401, 403, 404, 408, 429})


def bulk_body(index: str, records: Sequence[ForwardRecord]) -> bytes:
    """The `_bulk` NDJSON body: a create action then the ECS document, per record, each line ending in LF."""
    lines = []
    for record in records:
        lines.append(orjson.dumps({"create": {"_index": index, "_id": record.leaf_hex}}))
        lines.append(orjson.dumps(to_ecs(record)))
    return b"\n".join(lines) + b"\n"


def _item_result(item: Any) -> tuple[int, str]:
    if not isinstance(item, dict) or len(item) != 1:
        return 0, "malformed bulk item"
    result = next(iter(item.values()))
    if not isinstance(result, dict) or not isinstance(result.get("status"), int):
        return 0, "bulk item without a status"
    error = result.get("error")
    reason = ""
    if isinstance(error, dict):
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
    elif error is not None:
        reason = str(error)
    return int(result["status"]), reason[:300]


class ElasticsearchSink:
    """Bulk-create ECS documents into one index, alias or data stream."""

    def __init__(self, client: httpx.Client, url: str, index: str) -> None:
        self.client = client
        self.url = url.rstrip("/") + "/_bulk"
        self.index = index

    def send(self, records: Sequence[ForwardRecord]) -> list[DeadLetter]:
        refused: list[DeadLetter] = []
        try:
            dead = bisect_refusals(records, lambda chunk: self._post(chunk, refused))
        except DeliveryError as exc:
            raise DeliveryError(
                str(exc), exc.remaining, retry_after=exc.retry_after, dead=[*exc.dead, *refused]
            ) from None
        return dead + refused

    def _post(self, records: Sequence[ForwardRecord], refused: list[DeadLetter]) -> None:
        what = f"elasticsearch {self.index}"
        response = post(
            self.client,
            self.url,
            bulk_body(self.index, records),
            what,
            records,
            headers={"Content-Type": "application/x-ndjson"},
            params={"filter_path": _FILTER},
        )
        check_response(response, what, records)
        try:
            reply = response.json()
        except ValueError:
            raise DeliveryError(f"{what}: the _bulk response is not JSON", records) from None
        items = reply.get("items") if isinstance(reply, dict) else None
        if not reply.get("errors") and items is None:
            return  # filter_path drops items when there were no errors
        if not isinstance(items, list) or len(items) != len(records):
            raise DeliveryError(f"{what}: the _bulk response does not answer every item", records)
        retry: list[ForwardRecord] = []
        first_error = ""
        for record, item in zip(records, items, strict=True):
            status, reason = _item_result(item)
            if 200 <= status < 300 or status == 409:
                continue
            if status in _RETRY_ITEM or status >= 500 or status == 0:
                retry.append(record)
                first_error = first_error or f"HTTP {status} {reason}"
            else:
                refused.append((record, f"HTTP {status} {reason}"))
        if retry:
            raise DeliveryError(f"{what}: {len(retry)} of {len(records)} items not stored ({first_error})", retry)

    def close(self) -> None:
        self.client.close()
