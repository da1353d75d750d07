"""RFC 8785 JSON Canonicalization Scheme (JCS), fast.

Pure: no I/O. `canonical_json` serialises with msgspec (sorted keys and
fields, the same string escaping as JCS) and falls back to the reference
`rfc8785` package wherever msgspec alone could differ:

* floats — JCS prints numbers as ECMAScript does. `parse_json` decodes every
  JSON float as a `JsonNumber` (a float subclass) that the encoder hands back
  to us and we print through `rfc8785`. A plain Python float makes the value
  go down the reference path.
* integers beyond ±(2**53 - 1) — JCS cannot represent them. A number of 16
  digits or more in the output sends the value down the reference path, which
  refuses such integers. A number in compact JSON starts the text or follows
  `:`, `,` or `[`, so a run of digits inside a string (a commit hash) does not count.
* keys outside the Basic Multilingual Plane — JCS sorts by UTF-16 code units.
  Any 4-byte UTF-8 sequence in the output sends the value down the reference path.

A hypothesis test checks byte-identity with `rfc8785` on random values.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import rfc8785

__all__ = ["CanonicalJsonError", "JsonNumber", "canonical_json", "has_plain_float", "json_decoder", "parse_json"]


T = TypeVar("T")


class CanonicalJsonError(ValueError):
    """A value has no RFC 8785 form (NaN, infinity, a huge integer, a non-JSON type)."""


class JsonNumber(float):
    """A float that came from JSON text; serialised the ECMAScript way."""

    __slots__ = ()


def _encode_hook(value: Any) -> Any:
    if type(value) is JsonNumber:
        return msgspec.Raw(rfc8785.dumps(float(value)))
    raise TypeError(f"{type(value).__name__} is not a JSON type")


def _builtin_hook(value: Any) -> Any:
    if type(value) is JsonNumber:
        return float(value)
    raise TypeError(f"{type(value).__name__} is not a JSON type")


_ENCODER = msgspec.json.Encoder(order="sorted", enc_hook=_encode_hook)
_DECODER = msgspec.json.Decoder(float_hook=JsonNumber)
_ATOMS = frozenset({str, bool, type(None), int, JsonNumber})
_CONTAINERS = frozenset({dict, list, tuple})
_NON_BMP = re.compile(rb"[\xf0-\xf4]")
_DIGIT_MASK = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_SIXTEEN_DIGITS = b"1" * 16
_LONG_NUMBER = re.compile(rb"(?:^|[:,\[])-?[0-9]{16}")


def _has_long_number(out: bytes) -> bool:
    """True if compact JSON `out` may hold a number of 16 digits or more (one that may exceed 2**53).

    False positives (a string holding `:` then 16 digits) only cost the reference path.
    """
    return out.translate(_DIGIT_MASK).find(_SIXTEEN_DIGITS) >= 0 and _LONG_NUMBER.search(out) is not None


def json_decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    """A decoder into `kind` whose floats become JsonNumber."""
    return msgspec.json.Decoder(kind, float_hook=JsonNumber)


def parse_json(data: bytes | str) -> Any:
    """Decode JSON; floats become JsonNumber so canonical_json needs no scan for them."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise CanonicalJsonError(f"malformed JSON: {exc}") from None


def has_plain_float(value: Any) -> bool:
    """True if `value` holds a plain Python float; CanonicalJsonError on any non-JSON type.

    JSON types are dict (str keys), list, tuple, str, int, bool, None, float
    and JsonNumber. Containers are checked in bulk, one type set per container.
    """
    kind = type(value)
    if kind is dict:
        if not set(map(type, value)) <= {str}:
            raise CanonicalJsonError("object keys must be strings")
        children: Any = value.values()
    elif kind is list or kind is tuple:
        children = value
    elif kind in _ATOMS:
        return False
    elif kind is float:
        return True
    else:
        raise CanonicalJsonError(f"{kind.__name__} is not a JSON type")
    kinds = set(map(type, children))
    if kinds <= _ATOMS:
        return False
    unknown = kinds - _ATOMS - _CONTAINERS - {float}
    if unknown:
        raise CanonicalJsonError(f"{sorted(k.__name__ for k in unknown)[0]} is not a JSON type")
    found = float in kinds
    for child in children:
        if type(child) in _CONTAINERS and has_plain_float(child):
            found = True
    return found


def canonical_json(value: Any, *, float_free: bool = False) -> bytes:
    """RFC 8785 bytes of a JSON value (dicts, lists, scalars, or msgspec Structs).

    Pass float_free=True only for values known to hold JSON types and no plain
    float: parse_json/json_decoder output and strings, or values already
    checked with has_plain_float. Otherwise the value is scanned (a msgspec
    Struct is not: it takes the reference path, its free-form fields checked
    by the caller).
    """
    try:
        if float_free or (not isinstance(value, msgspec.Struct) and not has_plain_float(value)):
            out = _ENCODER.encode(value)
            if (out.isascii() or _NON_BMP.search(out) is None) and not _has_long_number(out):
                return out
        return rfc8785.dumps(msgspec.to_builtins(value, enc_hook=_builtin_hook))
    except rfc8785.IntegerDomainError as exc:
        raise CanonicalJsonError(f"{exc}; integers beyond ±2**53-1 must be sent as strings") from None
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalJsonError(f"not representable as RFC 8785 JSON: {exc}") from None
