"""Alert sinks: the request each receiver expects, and a sender per sink over the durable outbox.

Shapes (docs/alerts.md shows the receiver side):

* webhook — POST of the alert as JSON (`type: sealtrail.alert`), signed twice with the
  sink's secret: Standard Webhooks (standardwebhooks.com) headers `webhook-id` (the alert
  id, constant across retries), `webhook-timestamp` and `webhook-signature: v1,<base64
  HMAC-SHA256(key, id + "." + timestamp + "." + body)>`; and `X-Sealtrail-Signature:
  sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>` with `X-Sealtrail-Timestamp`.
  Both cover the timestamp, so a receiver that refuses old timestamps (5 minutes) and
  repeated ids is safe from replays.
* slack — a Slack incoming webhook: {"text", "blocks"} (Block Kit header, section, fields, context).
* alertmanager — Alertmanager API v2 `POST /api/v2/alerts`: an array of postableAlert
  {labels, annotations, startsAt, endsAt, generatorURL}; endsAt is `resolve_after` seconds
  after sending, so the alert resolves by itself.

Delivery: each sink has one sender thread that takes the oldest alert queued for it,
sends it, and deletes it only after a 2xx answer, so alerts reach each sink in order and
a sink that is down gets everything queued when it returns. Failures are retried with
exponential backoff and jitter (Retry-After is honoured); a 400, 410, 413 or 422 means the
receiver will never take this body: the alert is dropped and counted as rejected. With
`max_age`, an alert still undelivered after that many seconds is dropped and counted as
expired; by default the sender never gives up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from .. import __version__
from ..event import format_time
from .rules import SinkConfig
from .state import AlertStore, Queued

__all__ = [
    "PERMANENT_STATUSES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryError",
    "SinkRequest",
    "SinkSender",
    "alertmanager_alerts",
    "backoff_delay",
    "build_request",
    "send",
    "slack_message",
    "webhook_payload",
]

logger = logging.getLogger("sealtrail.alerts")

SIGNATURE_HEADER = "X-Sealtrail-Signature"
TIMESTAMP_HEADER = "X-Sealtrail-Timestamp"
PERMANENT_STATUSES = frozenset({400, 410, 413, 422})
"""Answers that mean the receiver will never accept this body: the alert is dropped (counted as rejected)."""

_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")
_SLACK_ICONS = {"info": "ℹ️", "low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}


@dataclass(frozen=True)
class SinkRequest:
    url: str
    headers: dict[str, str]
    body: bytes


class DeliveryError(Exception):
    """A delivery failed; `permanent` if retrying the same body cannot help."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def _link(queued: Mapping[str, Any], base_url: str | None) -> str | None:
    index = queued.get("log", {}).get("index")
    if base_url is None or index is None:
        return None
    return f"{base_url}/v1/entries/{index}"


def webhook_payload(queued: Mapping[str, Any], base_url: str | None) -> dict[str, Any]:
    """The generic webhook's JSON: the alert, when it fired, and where it sits in the log."""
    alert = queued["alert"]
    log = dict(queued.get("log", {}))
    link = _link(queued, base_url)
    if link is not None:
        log["url"] = link
    return {"type": "sealtrail.alert", "version": 1, **alert, "fired_at": queued["fired_at"], "log": log}


def _escape(text: str) -> str:
    """Slack mrkdwn: &, < and > must be escaped (api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(queued: Mapping[str, Any], base_url: str | None) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (notification fallback) and Block Kit `blocks`."""
    alert = queued["alert"]
    severity = alert["severity"]
    summary = alert["summary"]
    fields = [
        {"type": "mrkdwn", "text": f"*Severity*\n{severity}"},
        {"type": "mrkdwn", "text": f"*Events*\n{alert.get('count', 1)}"},
    ]
    for path, value in alert.get("group", {}).items():
        if value and len(fields) < 10:
            fields.append({"type": "mrkdwn", "text": _cut(f"*{_escape(path)}*\n{_escape(value)}", 2000)})
    log = queued.get("log", {})
    where = f"{_escape(str(log.get('origin', 'sealtrail')))} · alert event {log.get('index', '?')}"
    if alert.get("first_index") is not None:
        where += f" · events {alert['first_index']}–{alert['last_index']}"
    link = _link(queued, base_url)
    if link is not None:
        where += f" · <{link}|open in sealtrail>"
    body = f"*{_escape(summary)}*"
    if alert.get("description"):
        body += f"\n{_escape(alert['description'])}"
    return {
        "text": _cut(f"[{severity.upper()}] {summary}", 3000),
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(f"{_SLACK_ICONS[severity]} {alert['rule']}", 150)},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(body, 3000)}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(where, 3000)}]},
        ],
    }


def _label_name(text: str) -> str:
    """An Alertmanager label name ([a-zA-Z_][a-zA-Z0-9_]*) from a rule label or a group path."""
    name = _LABEL_NAME.sub("_", text.split("|")[0])
    return name if name and not name[0].isdigit() else f"_{name}"


def alertmanager_alerts(
    queued: Mapping[str, Any], base_url: str | None, now: float, resolve_after: float
) -> list[dict[str, Any]]:
    """Alertmanager API v2 postableAlerts with one alert; labels identify it (rule, severity, group)."""
    alert = queued["alert"]
    labels = {"alertname": alert["rule"], "severity": alert["severity"], "source": "sealtrail"}
    for path, value in alert.get("group", {}).items():
        if value:
            labels.setdefault(_label_name(path), value)
    for name, value in alert.get("labels", {}).items():
        labels.setdefault(_label_name(name), value)
    annotations = {"summary": alert["summary"], "sealtrail_alert_id": alert["id"], "count": str(alert["count"])}
    if alert.get("description"):
        annotations["description"] = alert["description"]
    log = queued.get("log", {})
    if log.get("index") is not None:
        annotations["sealtrail_log_index"] = str(log["index"])
    if alert.get("first_index") is not None:
        annotations["events"] = f"{alert['first_index']}-{alert['last_index']}"
    starts = datetime.fromisoformat(queued["fired_at"]).timestamp()
    out: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": queued["fired_at"],
        "endsAt": format_time(datetime.fromtimestamp(max(starts, now) + resolve_after, UTC)),
    }
    link = _link(queued, base_url)
    if link is not None:
        out["generatorURL"] = link
    return [out]


def _signed_headers(key: bytes, alert_id: str, body: bytes, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    standard = hmac.new(key, f"{alert_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    simple = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "webhook-id": alert_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(standard).decode(),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: f"sha256={simple}",
    }


def build_request(sink: SinkConfig, queued: Mapping[str, Any], *, now: float, base_url: str | None) -> SinkRequest:
    """The HTTP request that delivers one queued alert to `sink` at time `now`."""
    headers = {"Content-Type": "application/json", "User-Agent": f"sealtrail/{__version__}"}
    if sink.bearer_token:
        headers["Authorization"] = f"Bearer {sink.bearer_token}"
    if sink.type == "webhook":
        body = orjson.dumps(webhook_payload(queued, base_url))
        assert sink.secret is not None
        headers.update(_signed_headers(sink.secret, queued["alert"]["id"], body, now))
        return SinkRequest(sink.url, headers, body)
    if sink.type == "slack":
        return SinkRequest(sink.url, headers, orjson.dumps(slack_message(queued, base_url)))
    url = sink.url.rstrip("/")
    if not url.endswith("/api/v2/alerts"):
        url += "/api/v2/alerts"
    return SinkRequest(url, headers, orjson.dumps(alertmanager_alerts(queued, base_url, now, sink.resolve_after)))


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def send(client: httpx.Client, request: SinkRequest) -> None:
    """POST the request; DeliveryError unless the answer is 2xx. Messages never hold the URL."""
    try:
        response = client.post(request.url, content=request.body, headers=request.headers)
    except httpx.TimeoutException:
        raise DeliveryError("timed out") from None
    except httpx.TransportError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if 200 <= response.status_code < 300:
        return
    reason = response.text[:200].strip().replace("\n", " ")
    raise DeliveryError(
        f"HTTP {response.status_code}{f': {reason}' if reason else ''}",
        permanent=response.status_code in PERMANENT_STATUSES,
        retry_after=_retry_after(response.headers.get("Retry-After")),
    )


def backoff_delay(attempts: int, initial: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter: a delay in [d/2, d], d = min(cap, initial * 2^attempts)."""
    ceiling = min(cap, initial * float(2 ** min(attempts, 62)))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


class SinkSender:
    """Delivers one sink's queued alerts, oldest first, on its own thread (see the module docstring)."""

    def __init__(
        self,
        sink: SinkConfig,
        store: AlertStore,
        *,
        base_url: str | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.sink = sink
        self._store = store
        self._base_url = base_url
        self._clock = clock
        self._transport = transport
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sealtrail-sink-{self.sink.name}", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.sink.timeout + 5)
            self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=self.sink.timeout, follow_redirects=False, transport=self._transport) as client:
            while not self._stop.is_set():
                try:
                    wait = self.step(client)
                except Exception:  # the outbox is unreadable: keep the thread, try again later
                    logger.exception("alert sink %s: delivery loop failed", self.sink.name)
                    wait = self.sink.backoff_max
                if wait is None or wait > 0:
                    self._wake.wait(wait)
                    self._wake.clear()

    def step(self, client: httpx.Client) -> float | None:
        """Try the oldest queued alert once; the seconds to wait before the next step (None: until woken)."""
        item = self._store.head(self.sink.name)
        if item is None:
            return None
        now = self._clock()
        if self.sink.max_age and now - item.created > self.sink.max_age:
            logger.warning(
                "alert sink %s: gave up on alert %s after %.0fs", self.sink.name, item.alert_id, now - item.created
            )
            self._store.give_up(item, "expired")
            return 0
        if item.next_attempt > now:
            return item.next_attempt - now
        return self._attempt(client, item, now)

    def _attempt(self, client: httpx.Client, item: Queued, now: float) -> float:
        request = build_request(self.sink, item.body, now=now, base_url=self._base_url)
        try:
            send(client, request)
        except DeliveryError as exc:
            self.last_error = str(exc)
            if exc.permanent:
                logger.error(
                    "alert sink %s (%s) refused alert %s for good: %s",
                    self.sink.name,
                    self.sink.display_url(),
                    item.alert_id,
                    exc,
                )
                self._store.give_up(item, "rejected")
                return 0
            delay = backoff_delay(item.attempts, self.sink.backoff_initial, self.sink.backoff_max, exc.retry_after)
            if item.attempts == 0:
                logger.warning(
                    "alert sink %s (%s) is failing, will retry: %s", self.sink.name, self.sink.display_url(), exc
                )
            self._store.retry(item, now + delay, str(exc))
            return delay
        self.last_error = None
        self._store.delivered(item)
        return 0
