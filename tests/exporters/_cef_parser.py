"""A CEF reader written from the CEF Implementation Standard, independent of sealtrail.exporters.cef.

Header: seven `|`-separated fields after `CEF:`, where only `\\|` and `\\\\` are escapes.
Extension: space-separated key=value pairs; a key is alphanumeric and its `=` is never
escaped, while a value escapes `\\\\`, `\\=`, `\\n` (LF) and `\\r` (CR); pipes are literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Cef", "parse_cef"]

_KEY = re.compile(r"(?:^| )([A-Za-z0-9]+)=")
_VALUE_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_VALUE_ESCAPES = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}


@dataclass(frozen=True)
class Cef:
    version: str
    vendor: str
    product: str
    device_version: str
    signature_id: str
    name: str
    severity: str
    extension: dict[str, str]


def parse_cef(line: str) -> Cef:
    if not line.startswith("CEF:"):
        raise ValueError("not a CEF line")
    fields: list[str] = []
    current: list[str] = []
    position = 4
    while len(fields) < 7:
        if position >= len(line):
            raise ValueError("the header has fewer than 7 fields")
        char = line[position]
        if char == "\\":
            following = line[position + 1 : position + 2]
            if following not in ("|", "\\"):
                raise ValueError(f"invalid header escape \\{following} at {position}")
            current.append(following)
            position += 2
            continue
        if char in "\r\n":
            raise ValueError("a newline in the header")
        if char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        position += 1
    extension = line[position:]
    pairs: dict[str, str] = {}
    keys = list(_KEY.finditer(extension))
    for number, match in enumerate(keys):
        end = keys[number + 1].start() if number + 1 < len(keys) else len(extension)
        raw = extension[match.end() : end]
        if "\n" in raw or "\r" in raw:
            raise ValueError("a raw newline in an extension value")
        if re.search(r"(?<!\\)(?:\\\\)*=", raw):
            raise ValueError(f"an unescaped = in the value of {match.group(1)}")

        def unescape(found: re.Match[str]) -> str:
            if found.group(1) not in _VALUE_ESCAPES:
                raise ValueError(f"invalid extension escape \\{found.group(1)}")
            return _VALUE_ESCAPES[found.group(1)]

        pairs[match.group(1)] = _VALUE_ESCAPE.sub(unescape, raw)
    version, vendor, product, device_version, signature_id, name, severity = fields
    return Cef(version, vendor, product, device_version, signature_id, name, severity, pairs)
