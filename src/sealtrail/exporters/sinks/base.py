"""The contract every sink keeps with the forwarder: acknowledge, ask for a retry, or refuse a record for good.

`send(records)` returns only when every record is acknowledged by the
receiver or refused permanently (returned as dead letters with the reason);
otherwise it raises DeliveryError naming the records still to deliver. The
forwarder advances its cursor only past a batch that `send` returned for, so
delivery is at least once; receivers that deduplicate (Elasticsearch `create`
with `_id` = leaf hash) make it exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ..record import ForwardRecord

__all__ = ["DeadLetter", "DeliveryError", "PermanentError", "Sink", "bisect_refusals"]

DeadLetter = tuple[ForwardRecord, str]
"""A record the receiver refused for good, and why."""


class DeliveryError(Exception):
    """Some records are not acknowledged yet: retry `remaining` after a backoff.

    The message never holds a credential: it names the receiver, the status and its error text.
    """

    def __init__(
        self,
        message: str,
        remaining: Sequence[ForwardRecord],
        *,
        retry_after: float | None = None,
        dead: Sequence[DeadLetter] = (),
    ) -> None:
        super().__init__(message)
        self.remaining = list(remaining)
        self.retry_after = retry_after
        self.dead = list(dead)


class PermanentError(Exception):
    """The receiver refused this request for what it holds (HTTP 400-like); the records will never be accepted."""


class Sink(Protocol):
    """Where a forwarder sends records."""

    def send(self, records: Sequence[ForwardRecord]) -> list[DeadLetter]:
        """Deliver `records`; the dead letters returned are refused for good; DeliveryError to retry."""
        ...

    def close(self) -> None: ...


def bisect_refusals(
    records: Sequence[ForwardRecord], post: Callable[[Sequence[ForwardRecord]], None]
) -> list[DeadLetter]:
    """Deliver with `post`, isolating records the receiver refuses (PermanentError) by halving the batch.

    A refused single record becomes a dead letter; DeliveryError from `post` is re-raised with the
    records not yet acknowledged (those it names, then every half not yet sent).
    """
    dead: list[DeadLetter] = []
    pending: list[Sequence[ForwardRecord]] = [records]
    while pending:
        chunk = pending.pop(0)
        try:
            post(chunk)
        except PermanentError as exc:
            if len(chunk) == 1:
                dead.append((chunk[0], str(exc)))
            else:
                middle = len(chunk) // 2
                pending[:0] = [chunk[:middle], chunk[middle:]]
        except DeliveryError as exc:
            rest = [record for part in pending for record in part]
            remaining = [*exc.remaining, *rest]
            raise DeliveryError(str(exc), remaining, retry_after=exc.retry_after, dead=[*dead, *exc.dead]) from None
    return dead
