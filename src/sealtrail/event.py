"""The event envelope (DESIGN.md §3): validation, defaults and entry bytes.

Pure: no I/O. `prepare` turns what a source sent into the exact entry bytes
that get hashed into the tree: it validates every field with a message that
names it, fills in id, received, salt and defaults, and moves a `raw` payload
that would push the entry past 65,535 bytes out of line (the envelope keeps
its SHA-256 digest, so integrity still covers it).

Identity and dedup: an event's id is what the source gave; else, when the
source names a delivery, a UUIDv8 derived from (source type, source id,
delivery) with SHA-256 (RFC 9562 §B.2), so a redelivery gets the same id;
else a fresh UUIDv7. An event's dedup keys are its id and, when it has a
delivery, that derived id: a repeat of either is the same event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple, overload

import msgspec

from .jcs import CanonicalJsonError, JsonNumber, canonical_json, has_plain_float, json_decoder
from .merkle import leaf_hash
from .note import NoteError, Signer, Verifier, b64decode_strict, b64encode
from .search import IndexRow, IndexRows, envelope_row
from .tiles import ENTRY_MAX

__all__ = [
    "KINDS_EXAMPLES",
    "OUTCOMES",
    "SOURCE_TYPES",
    "Envelope",
    "EventError",
    "PreparedBatch",
    "PreparedEvent",
    "Source",
    "delivery_id",
    "format_time",
    "is_out_of_line",
    "normalise",
    "prepare",
    "prepare_batch",
    "prepare_into",
    "sign_event",
    "signed_form",
    "signing_bytes",
    "uuid7",
    "verify_envelope_signature",
    "verify_event_signature",
]

VERSION = 1
SOURCE_TYPES = frozenset(
    {"github", "gitlab", "jenkins", "kubernetes", "syslog", "cloudevents", "otlp", "api", "git", "hec", "sealtrail"}
)
OUTCOMES = frozenset({"success", "failure", "unknown"})
KINDS_EXAMPLES = (
    "code.push", "code.review", "ci.run", "ci.job", "deploy", "auth.failure", "auth.success",
    "access.change", "config.change", "api.request", "secret.alert",
)  # fmt: skip
SALT_BYTES = 16
MAX_LABEL = 1024

MAX_RAW_BYTES = 8 * 1024 * 1024
"""Largest raw payload accepted (stored out of line when it does not fit an entry)."""

_KIND_PATTERN = r"^[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*$"
_UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DELIVERY_NAMESPACE = b"sealtrail.dev/delivery/v1\n"


class EventError(ValueError):
    """An event is invalid; the message names the field and what to change."""


# --- identifiers and times -----------------------------------------------------


def _uuid_text(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_POOL = threading.local()


def _random(n: int) -> bytes:
    """n bytes from os.urandom, drawn 4 KiB at a time (one system call per ~250 events)."""
    pool: bytes = getattr(_POOL, "buffer", b"")
    if len(pool) < n:
        pool = os.urandom(4096)
    _POOL.buffer = pool[n:]
    return pool[:n]


def _uuid7_bytes(unix_ms: int | None = None) -> bytes:
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    r = _random(10)
    return (ms & 0xFFFFFFFFFFFF).to_bytes(6, "big") + bytes((0x70 | (r[0] & 0x0F), r[1], 0x80 | (r[2] & 0x3F))) + r[3:]


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def uuid7(unix_ms: int | None = None) -> str:
    """A UUID version 7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then 74 random bits."""
    return _uuid_text(_uuid7_bytes(unix_ms))


def _delivery_bytes(source_type: str, source_id: str, delivery: str) -> bytes:
    name = msgspec.json.encode([source_type, source_id, delivery])  # strings only: already RFC 8785
    digest = hashlib.sha256(_DELIVERY_NAMESPACE + name).digest()
    return digest[:6] + bytes((0x80 | (digest[6] & 0x0F), digest[7], 0x80 | (digest[8] & 0x3F))) + digest[9:16]


def delivery_id(source_type: str, source_id: str, delivery: str) -> str:
    """The UUIDv8 (RFC 9562 §B.2, SHA-256 name-based) of a source's delivery."""
    return _uuid_text(_delivery_bytes(source_type, source_id, delivery))


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: 2026-11-26T13:24:51.123456Z."""
    if moment.tzinfo is None:
        raise EventError("timestamps must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(field: str, value: Any) -> str:
    if type(value) is not str:
        raise EventError(f"{field}: expected an RFC 3339 timestamp string")
    try:
        if _CANONICAL_TIME.fullmatch(value):
            datetime.fromisoformat(value[:-1])
            return value
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EventError(f"{field}: {value!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise EventError(f"{field}: {value!r} has no time zone (add Z or an offset)")
    return format_time(parsed)


# --- the envelope schema (validated in C by msgspec) ------------------------------

Label = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LABEL)]
SourceType = Literal[
    "github", "gitlab", "jenkins", "kubernetes", "syslog", "cloudevents", "otlp", "api", "git", "hec", "sealtrail"
]
Outcome = Literal["success", "failure", "unknown"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    pass


class Source(_Strict):
    type: SourceType
    id: Label
    delivery: Label | None = None


class Actor(_Strict):
    id: Label | None = None
    name: Label | None = None
    type: Label | None = None
    ip: Label | None = None


class Target(_Strict):
    type: Label | None = None
    id: Label | None = None
    name: Label | None = None


class Signature(_Strict):
    key: Label
    alg: Literal["ed25519"]
    value: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9+/]{86}==$")]


class Envelope(_Strict):
    """DESIGN.md §3. Unset optional fields are omitted from the canonical bytes."""

    kind: Annotated[str, msgspec.Meta(max_length=128)]
    """A lowercase dotted category (_KIND_PATTERN), checked by _complete: kinds repeat, so it remembers good ones."""
    v: Literal[1] | msgspec.UnsetType = msgspec.UNSET
    id: Annotated[str, msgspec.Meta(pattern=_UUID_PATTERN)] | None = None
    time: str | None = None
    received: str | None = None
    source: Source | None = None
    action: Label | None = None
    outcome: Outcome | msgspec.UnsetType = msgspec.UNSET
    actor: Actor | None = None
    target: Target | None = None
    env: Label | None = None
    attrs: dict[str, Any] | None = None
    raw: Any = None
    sig: Signature | None = None
    salt: str | None = None


assert set(SourceType.__args__) == SOURCE_TYPES  # type: ignore[attr-defined]

_DECODER = json_decoder(Envelope)
_EMPTY_ACTOR = Actor()
_EMPTY_TARGET = Target()
_HINTS = {
    "kind": f"expected a lowercase dotted category such as {', '.join(KINDS_EXAMPLES[:4])}",
    "id": "expected a UUID such as 0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e5f",
    "sig.value": "expected the base64 of a 64-byte Ed25519 signature",
}
_AT = re.compile(r"^(.*) - at `\$\.?(.*)`$")


_ITEM = re.compile(r"^\[(\d+)\]\.?(.*)$")


def _explain(exc: msgspec.MsgspecError) -> EventError:
    """A msgspec error as `field: what is wrong` (prefixed `event N:` inside a batch)."""
    message = str(exc) or "invalid event"
    match = _AT.match(message)
    what, field = match.groups() if match else (message, "")
    what = what[0].lower() + what[1:]
    prefix = ""
    item = _ITEM.match(field)
    if item:
        prefix, field = f"event {item.group(1)}: ", item.group(2)
    if not field:
        return EventError(prefix + what + (" (extras belong in attrs)" if "unknown field" in what else ""))
    return EventError(f"{prefix}{field}: {_HINTS.get(field, what)}")


_KIND = re.compile(_KIND_PATTERN)
_GOOD_KINDS: dict[str, None] = {}
"""Kinds that matched _KIND_PATTERN (at most 4096): a dict lookup instead of a regex for each event."""


def _check_kind(kind: str) -> None:
    if kind in _GOOD_KINDS:
        return
    if _KIND.match(kind) is None:
        raise EventError(f"kind: {_HINTS['kind']}")
    if len(_GOOD_KINDS) < 4096:
        _GOOD_KINDS[kind] = None


def _check_ip(value: str) -> None:
    """An IPv4 or IPv6 address, kept as the source wrote it (no rewriting: signatures cover it)."""
    try:
        socket.inet_pton(socket.AF_INET, value)
        return
    except OSError:
        pass
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise EventError(f"actor.ip: {value!r} is not an IP address") from None


def _salt(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SALT_BYTES or b64encode(raw) != value:
        raise EventError("salt: expected canonical base64 of 16 random bytes")
    return value


def _float_free(env: Envelope, from_json: bool) -> bool:
    """True if the envelope holds no plain float; EventError if attrs or raw hold a non-JSON value."""
    if from_json:
        return True
    try:
        return not (has_plain_float(env.attrs) or has_plain_float(env.raw))
    except CanonicalJsonError as exc:
        raise EventError(f"attrs/raw: {exc}") from None


def _signed_form(env: Envelope, float_free: bool) -> bytes:
    """The bytes a source signature covers: the canonical envelope without sig and received."""
    try:
        return canonical_json(msgspec.structs.replace(env, sig=None, received=None), float_free=float_free)
    except CanonicalJsonError as exc:
        raise EventError(str(exc)) from None


def _complete(
    env: Envelope, received: str, default_source: Source | None, float_free: bool
) -> tuple[Envelope, tuple[bytes, ...]]:
    """Check what the schema cannot express and fill in defaults, in place.

    Returns the envelope and its 16-byte dedup keys: its id, then its delivery-derived id if that differs.
    A signed event must need no default and no rewriting: its signature covers it as sent.
    """
    if env.received is not None:
        raise EventError("received: set by sealtrail when it accepts the event; leave it out")
    _check_kind(env.kind)
    signed = _signed_form(env, float_free) if env.sig is not None else None
    env.v = 1
    if env.outcome is msgspec.UNSET:
        env.outcome = "unknown"
    source = env.source
    if source is None:
        if default_source is None:
            raise EventError("source: required ({type, id}: where the event comes from)")
        env.source = source = default_source
    derived = None if source.delivery is None else _delivery_bytes(source.type, source.id, source.delivery)
    if env.id is None:
        key = _uuid7_bytes() if derived is None else derived
        env.id = _uuid_text(key)
    else:
        env.id = env.id.lower()
        key = bytes.fromhex(env.id.replace("-", ""))
    moment = env.time
    env.time = received if moment is None else _time("time", moment)
    env.received = received
    actor = env.actor
    if actor is not None:
        if actor.ip is not None:
            _check_ip(actor.ip)
        if actor == _EMPTY_ACTOR:
            env.actor = None
    if env.target == _EMPTY_TARGET:
        env.target = None
    env.salt = _b64(_random(SALT_BYTES)) if env.salt is None else _salt(env.salt)
    if signed is not None and _signed_form(env, float_free) != signed:
        raise EventError(
            "sig: the signed event is not complete and normalised (v, id, time in UTC with microseconds, "
            "outcome, source, salt); sign it with sealtrail's sign_event, which fills these in first"
        )
    return env, (key,) if derived is None or derived == key else (key, derived)


def _decode(event: Mapping[str, Any] | bytes | str) -> Envelope:
    try:
        if isinstance(event, bytes | str):
            env = _DECODER.decode(event)
        elif isinstance(event, Mapping):
            env = msgspec.convert(dict(event), Envelope)
        else:
            raise EventError("an event must be a JSON object")
    except msgspec.ValidationError as exc:
        raise _explain(exc) from None
    except msgspec.DecodeError as exc:
        raise EventError(f"malformed JSON: {exc}") from None
    return env


def normalise(
    event: Mapping[str, Any] | bytes | str, *, received: str, default_source: Source | None = None
) -> Envelope:
    """The validated envelope with defaults filled in (id, time, outcome, salt, received).

    `event` is JSON text (the ingest path) or Python values.
    """
    env = _decode(event)
    return _complete(env, received, default_source, _float_free(env, isinstance(event, bytes | str)))[0]


class PreparedEvent(NamedTuple):
    """An envelope ready to append: its entry bytes, leaf hash and dedup keys.

    A tuple so that it is cheap to build and to pass between processes.
    """

    id: str
    keys: tuple[bytes, ...]
    """16-byte dedup keys: the id, then the delivery-derived id if that differs."""
    entry: bytes
    leaf_hash: bytes
    blob: tuple[str, bytes] | None
    """(sha256 hex digest, canonical bytes) of a raw payload stored out of line."""
    index_row: IndexRow | None = None
    """The event's search row (search.index_row of the entry), made here so that workers do it; None: the store does."""


class PreparedBatch(Sequence[PreparedEvent]):
    """Prepared events by column, in order: how a preparing process hands a chunk to the sequencer.

    A few lists instead of a tuple per event, so that the chunk pickles, and the
    sequencer binds it to SQL, without visiting each event as an object; indexing
    it makes PreparedEvents.
    """

    __slots__ = ("blobs", "entries", "ids", "keys", "leaves", "more_keys", "rows")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.keys: list[bytes] = []
        """Each event's first dedup key: its id as 16 bytes."""
        self.more_keys: dict[int, tuple[bytes, ...]] = {}
        """Position -> the event's further dedup keys (a delivery-derived id that differs from its id)."""
        self.entries: list[bytes] = []
        self.leaves: list[bytes] = []
        self.blobs: dict[int, tuple[str, bytes]] = {}
        """Position -> (sha256 hex digest, bytes) of a raw payload stored out of line."""
        self.rows = IndexRows()

    @classmethod
    def of(cls, events: Iterable[PreparedEvent]) -> PreparedBatch:
        """`events` as a batch (itself if it is one)."""
        if isinstance(events, PreparedBatch):
            return events
        batch = cls()
        batch.extend(events)
        return batch

    def add(
        self,
        event_id: str,
        keys: tuple[bytes, ...],
        entry: bytes,
        leaf: bytes,
        blob: tuple[str, bytes] | None,
        row: IndexRow | None,
    ) -> None:
        """Append one event; `row` None leaves its search row to the store (as PreparedEvent.index_row)."""
        if not keys:
            raise ValueError(f"event {event_id} has no dedup key")
        if len(keys) > 1:
            self.more_keys[len(self.ids)] = keys[1:]
        if blob is not None:
            self.blobs[len(self.ids)] = blob
        self.ids.append(event_id)
        self.keys.append(keys[0])
        self.entries.append(entry)
        self.leaves.append(leaf)
        self.rows.append(row)

    def append(self, event: PreparedEvent) -> None:
        self.add(event.id, event.keys, event.entry, event.leaf_hash, event.blob, event.index_row)

    def extend(self, events: Iterable[PreparedEvent]) -> None:
        if not isinstance(events, PreparedBatch):
            for event in events:
                self.append(event)
            return
        offset = len(self.ids)
        self.more_keys.update((offset + at, keys) for at, keys in events.more_keys.items())
        self.blobs.update((offset + at, blob) for at, blob in events.blobs.items())
        self.ids += events.ids
        self.keys += events.keys
        self.entries += events.entries
        self.leaves += events.leaves
        self.rows.extend(events.rows)

    def all_keys(self) -> list[bytes]:
        """Every dedup key of the batch (first keys in order, then the others)."""
        if not self.more_keys:
            return self.keys
        return self.keys + [key for keys in self.more_keys.values() for key in keys]

    def key_rows(self, first: int) -> list[tuple[bytes, int]]:
        """(key, index) of every dedup key, the batch's events taking the indices first, first + 1, ..."""
        rows = list(zip(self.keys, range(first, first + len(self.keys)), strict=True))
        rows += [(key, first + at) for at, keys in self.more_keys.items() for key in keys]
        return rows

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> PreparedEvent: ...
    @overload
    def __getitem__(self, index: slice) -> PreparedBatch: ...
    def __getitem__(self, index: int | slice) -> PreparedEvent | PreparedBatch:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self.ids))
            if step != 1:
                raise ValueError("PreparedBatch slices are contiguous")
            stop = max(start, stop)
            part = PreparedBatch()
            part.ids, part.keys = self.ids[start:stop], self.keys[start:stop]
            part.entries, part.leaves = self.entries[start:stop], self.leaves[start:stop]
            part.more_keys = {at - start: keys for at, keys in self.more_keys.items() if start <= at < stop}
            part.blobs = {at - start: blob for at, blob in self.blobs.items() if start <= at < stop}
            part.rows = self.rows[start:stop]
            return part
        at = range(len(self.ids))[index]
        keys = (self.keys[at], *self.more_keys.get(at, ()))
        return PreparedEvent(self.ids[at], keys, self.entries[at], self.leaves[at], self.blobs.get(at), self.rows[at])

    def __iter__(self) -> Iterator[PreparedEvent]:
        for at in range(len(self.ids)):
            yield self[at]

    def __reduce__(self) -> tuple[Callable[..., PreparedBatch], tuple[Any, ...]]:
        columns = (self.ids, self.keys, self.more_keys, self.entries, self.leaves, self.blobs, self.rows)
        return _batch_of_columns, columns


def _batch_of_columns(
    ids: list[str],
    keys: list[bytes],
    more_keys: dict[int, tuple[bytes, ...]],
    entries: list[bytes],
    leaves: list[bytes],
    blobs: dict[int, tuple[str, bytes]],
    rows: IndexRows,
) -> PreparedBatch:
    batch = PreparedBatch()
    batch.ids, batch.keys, batch.more_keys, batch.entries = ids, keys, more_keys, entries
    batch.leaves, batch.blobs, batch.rows = leaves, blobs, rows
    return batch


def _seal(env: Envelope, *, float_free: bool) -> tuple[bytes, tuple[str, bytes] | None]:
    """The entry bytes of a completed envelope, moving raw out of line if the entry would not fit, and that blob."""
    try:
        entry = canonical_json(env, float_free=float_free)
        blob: tuple[str, bytes] | None = None
        if len(entry) > ENTRY_MAX and env.raw is not None:
            raw_bytes = canonical_json(env.raw, float_free=float_free)
            if len(raw_bytes) > MAX_RAW_BYTES:
                raise EventError(f"raw: {len(raw_bytes)} bytes, over the {MAX_RAW_BYTES}-byte limit")
            digest = hashlib.sha256(raw_bytes).hexdigest()
            env.raw = {"digest": f"sha256:{digest}", "size": len(raw_bytes)}
            blob = (digest, raw_bytes)
            entry = canonical_json(env, float_free=float_free)
    except CanonicalJsonError as exc:
        raise EventError(str(exc)) from None
    if len(entry) > ENTRY_MAX:
        raise EventError(
            f"event is {len(entry)} bytes after canonicalisation, over the {ENTRY_MAX}-byte entry limit "
            "even with raw stored out of line; move bulky fields from attrs into raw"
        )
    return entry, blob


Check = Callable[[Envelope], None]
"""Called with each completed envelope before it is sealed; raises to refuse it."""


def _prepared(
    event: Mapping[str, Any] | bytes | str, received: str, default_source: Source | None, check: Check | None
) -> tuple[str, tuple[bytes, ...], bytes, tuple[str, bytes] | None, IndexRow | None]:
    """(id, keys, entry, blob, search row) of one event: decoded once, and read from that one decoded envelope."""
    env = _decode(event)
    float_free = _float_free(env, isinstance(event, bytes | str))
    env, keys = _complete(env, received, default_source, float_free)
    if check is not None:
        check(env)
    entry, blob = _seal(env, float_free=float_free)
    event_id = env.id
    assert event_id is not None
    return event_id, keys, entry, blob, envelope_row(env, entry)


def prepare(
    event: Mapping[str, Any] | bytes | str,
    *,
    received: str | None = None,
    default_source: Source | None = None,
    check: Check | None = None,
) -> PreparedEvent:
    """Validate one event (JSON text, or Python values) and produce its entry (at most 65,535 bytes).

    `default_source` stands in for a missing `source` (e.g. the API token's
    source); `check` may refuse the completed envelope (permissions, signatures).
    """
    stamp = received or format_time(datetime.now(UTC))
    event_id, keys, entry, blob, row = _prepared(event, stamp, default_source, check)
    return PreparedEvent(event_id, keys, entry, leaf_hash(entry), blob, row)


def prepare_into(
    batch: PreparedBatch,
    event: Mapping[str, Any] | bytes | str,
    *,
    received: str,
    default_source: Source | None = None,
    check: Check | None = None,
) -> None:
    """prepare(), appending the result to `batch` (no PreparedEvent is made)."""
    event_id, keys, entry, blob, row = _prepared(event, received, default_source, check)
    batch.add(event_id, keys, entry, leaf_hash(entry), blob, row)


_BATCH_DECODER: msgspec.json.Decoder[Envelope | list[Envelope]] = msgspec.json.Decoder(
    Envelope | list[Envelope], float_hook=JsonNumber
)


def prepare_batch(
    data: bytes | str,
    *,
    received: str | None = None,
    default_source: Source | None = None,
    check: Check | None = None,
) -> list[PreparedEvent]:
    """prepare() for a JSON object or a JSON array of events; errors name the event (0-based)."""
    try:
        decoded = _BATCH_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise _explain(exc) from None
    except msgspec.DecodeError as exc:
        raise EventError(f"malformed JSON: {exc}") from None
    items = decoded if isinstance(decoded, list) else [decoded]
    stamp = received or format_time(datetime.now(UTC))
    out = []
    for number, env in enumerate(items):
        try:
            completed, keys = _complete(env, stamp, default_source, True)
            if check is not None:
                check(completed)
            entry, blob = _seal(completed, float_free=True)
        except EventError as exc:
            raise EventError(f"event {number}: {exc}" if len(items) > 1 else str(exc)) from None
        event_id = completed.id
        assert event_id is not None
        out.append(PreparedEvent(event_id, keys, entry, leaf_hash(entry), blob, envelope_row(completed, entry)))
    return out


def signed_form(env: Envelope) -> bytes:
    """The bytes a source signature over `env` covers (canonical envelope without sig and received)."""
    return _signed_form(env, float_free=not has_plain_float(env.attrs) and not has_plain_float(env.raw))


def verify_envelope_signature(env: Envelope, verifiers: Sequence[Verifier]) -> Verifier:
    """Raise EventError unless env.sig is a valid Ed25519 signature by one of `verifiers`."""
    if env.sig is None:
        raise EventError("sig: the event is not signed")
    return _check_signature(env.sig, signed_form(env), verifiers)


def _check_signature(sig: Signature, signed: bytes, verifiers: Sequence[Verifier]) -> Verifier:
    """The verifier whose key made `sig` over `signed`; EventError if none did."""
    by_key = {f"{v.name}+{v.key_id:08x}": v for v in verifiers}
    verifier = by_key.get(sig.key)
    if verifier is None:
        raise EventError(f"sig.key: {sig.key!r} is not a key registered for this source")
    try:
        signature = b64decode_strict(sig.value)
    except NoteError as exc:
        raise EventError(f"sig.value: {exc}") from None
    if not verifier.verify(signed, signature):
        raise EventError("sig: signature does not verify (the event was changed or signed by another key)")
    return verifier


def is_out_of_line(raw: Any) -> bool:
    """True if `raw` is the {digest, size} stand-in for a payload stored as a blob."""
    return (
        type(raw) is dict
        and raw.keys() == {"digest", "size"}
        and type(raw["digest"]) is str
        and _DIGEST.fullmatch(raw["digest"]) is not None
        and type(raw["size"]) is int
    )


# --- signing at the source -----------------------------------------------------


def signing_bytes(envelope: Mapping[str, Any]) -> bytes:
    """What a source signs: the canonical envelope without `sig` and `received`.

    `received` is excluded because sealtrail sets it after the source signed.
    """
    try:
        return canonical_json({k: v for k, v in envelope.items() if k not in ("sig", "received")})
    except CanonicalJsonError as exc:
        raise EventError(str(exc)) from None


def sign_event(envelope: Mapping[str, Any], signer: Signer, *, now: datetime | None = None) -> dict[str, Any]:
    """The envelope validated, completed (v, id, time, outcome, salt) and signed with Ed25519.

    What is signed is exactly what sealtrail will store, less `received`.
    """
    draft = {key: value for key, value in envelope.items() if key not in ("sig", "received")}
    stamp = format_time(now or datetime.now(UTC))
    draft.setdefault("time", stamp)
    env = normalise(draft, received=stamp)
    env.received = None
    value = signer.sign(_signed_form(env, float_free=not has_plain_float(env.attrs) and not has_plain_float(env.raw)))
    signed: dict[str, Any] = msgspec.to_builtins(env, enc_hook=float)
    signed["sig"] = {"key": f"{signer.name}+{signer.key_id:08x}", "alg": "ed25519", "value": b64encode(value)}
    return signed


def verify_event_signature(envelope: Mapping[str, Any], verifiers: list[Verifier]) -> Verifier:
    """Raise EventError unless `sig` is a valid signature by one of `verifiers`; return it."""
    try:
        sig = msgspec.convert(envelope.get("sig"), Signature)
    except msgspec.ValidationError as exc:
        raise EventError(f"sig: {exc}") from None
    return _check_signature(sig, signing_bytes(envelope), verifiers)
