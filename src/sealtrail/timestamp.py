"""RFC 3161 time-stamp tokens on checkpoints: the request, and the check of a response.

The message imprint is SHA-256 of the checkpoint's note text (origin, size and
root lines, without the signature lines), so one token covers the checkpoint
whatever cosignatures it later gathers. A verified token proves that the tree
of that size, hence every entry in it, existed at the token's genTime.

ASN.1, CMS and certificate-path work is done by `rfc3161-client` (Trail of
Bits, over the Rust `cryptography` stack); what is checked, by RFC 3161 section:
§2.4.2 status granted; §2.4.2 the SignedData's one signer and its signature,
its certificate (exactly one distinct one in the reply, or the pinned one)
chaining to the configured roots at genTime, with extendedKeyUsage critical and
holding id-kp-timeStamping (§2.3); the optional pinned TSA certificate; §2.4.1
the nonce of the request; and the imprint: SHA-256 over the checkpoint text.
Before that the reply's certificate set is put in DER order (see
der_sorted_certificates) and the unsigned CMS version fields are pinned.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from rfc3161_client import (
    HashAlgorithm,
    TimeStampRequest,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

__all__ = [
    "REPLY_MEDIA_TYPE",
    "REQUEST_MEDIA_TYPE",
    "TimestampError",
    "TimestampInfo",
    "TrustAnchors",
    "as_reply",
    "der_sorted_certificates",
    "imprint",
    "load_trust",
    "timestamp_request",
    "verify_timestamp",
]

REQUEST_MEDIA_TYPE = "application/timestamp-query"
REPLY_MEDIA_TYPE = "application/timestamp-reply"
SHA256 = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
MAX_REPLY_BYTES = 64 * 1024
"""Largest reply accepted from a TSA (a token with a certificate chain is a few kilobytes)."""


class TimestampError(ValueError):
    """A time-stamp response is malformed, was not granted, or does not verify; the message says why."""


def imprint(text: str) -> bytes:
    """SHA-256 of a checkpoint's note text: the message imprint of its time-stamp."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def timestamp_request(text: str) -> TimeStampRequest:
    """A TimeStampReq (RFC 3161 §2.4.1) for a checkpoint text: SHA-256, a random nonce, certReq true."""
    return TimestampRequestBuilder(text.encode("utf-8"), HashAlgorithm.SHA256, nonce=True, cert_req=True).build()


@dataclass(frozen=True)
class TrustAnchors:
    """Who may time-stamp: root certificates, and optionally the one TSA certificate to accept."""

    roots: tuple[x509.Certificate, ...]
    tsa_cert: x509.Certificate | None = None


def _certificates(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TimestampError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with warnings.catch_warnings():  # system bundles hold a few old roots with non-positive serials
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            if b"-----BEGIN" in data:
                return x509.load_pem_x509_certificates(data)
            return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise TimestampError(f"{path} holds no readable certificate (PEM or DER): {exc}") from None


def load_trust(ca_file: Path | None = None, tsa_cert: Path | None = None) -> TrustAnchors:
    """Roots from `ca_file` (PEM, one or more; default: the system's CA bundle) and an optional pinned TSA cert."""
    if ca_file is None:
        default = ssl.get_default_verify_paths().cafile
        if default is None:
            raise TimestampError("no CA file given and the system has no default CA bundle")
        ca_file = Path(default)
    pinned = None
    if tsa_cert is not None:
        (pinned, *_) = _certificates(tsa_cert)
    return TrustAnchors(tuple(_certificates(ca_file)), pinned)


def _der_length(data: bytes, at: int) -> tuple[int, int]:
    """(length, offset of the contents) of the DER element whose length octets start at `at`."""
    if at >= len(data):
        raise TimestampError("truncated DER")
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    if not 1 <= count <= 4 or at + 1 + count > len(data):
        raise TimestampError("malformed DER length")
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


def _der_length_octets(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def as_reply(der: bytes) -> bytes:
    """A TimeStampResp, given one or a bare TimeStampToken (a CMS ContentInfo, as `openssl ts -token_out` writes).

    A token is wrapped as `TimeStampResp { status { granted }, token }` (RFC 3161 §2.4.2),
    which adds nothing the token does not prove: all that is checked is inside the token.
    """
    if len(der) < 4 or der[0] != 0x30:
        raise TimestampError("not a DER time-stamp reply or token (it must start with a SEQUENCE)")
    length, body = _der_length(der, 1)
    if body + length != len(der):
        raise TimestampError("not a DER time-stamp reply or token: trailing or missing bytes")
    if der[body] == 0x30:  # TimeStampResp: SEQUENCE { PKIStatusInfo SEQUENCE, token }
        return der
    if der[body] == 0x06:  # ContentInfo: SEQUENCE { contentType OID, [0] content }
        granted = b"\x30\x03\x02\x01\x00"
        return b"\x30" + _der_length_octets(len(granted) + len(der)) + granted + der
    raise TimestampError("not a time-stamp reply or token")


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each DER element in data[start:end]."""
    found: list[tuple[int, int]] = []
    at = start
    while at < end:
        if data[at] & 0x1F == 0x1F:
            raise TimestampError("unexpected multi-byte ASN.1 tag")
        length, body = _der_length(data, at + 1)
        if body + length > end:
            raise TimestampError("truncated DER")
        found.append((at, body + length))
        at = body + length
    return found


def _contents(data: bytes, element: tuple[int, int]) -> list[tuple[int, int]]:
    _, body = _der_length(data, element[0] + 1)
    return _elements(data, body, element[1])


def der_sorted_certificates(reply: bytes) -> bytes:
    """The reply with its SignedData's `certificates` SET OF in DER order (X.690 §11.6).

    RFC 3161 §3.4 wants DER, and rfc3161-client parses DER strictly, but some TSAs (OpenSSL's
    `ts -reply` among them, when it sends a chain) write the certificates in chain order. That
    set is outside the signature, so sorting it changes nothing the token proves; anything this
    walk does not recognise is left as it is, for the parser to judge.
    """
    try:
        (response,) = _elements(reply, 0, len(reply))
        token = _contents(reply, response)[1]
        content = _contents(reply, token)[1]
        (signed_data,) = _contents(reply, content)
        fields = _contents(reply, signed_data)
        certificates = next((f for f in fields[3:4] if reply[f[0]] == 0xA0), None)
        if certificates is None:
            return reply
        members = _contents(reply, certificates)
    except (TimestampError, IndexError, ValueError):
        return reply
    if not members:
        return reply
    ordered = sorted(reply[a:b] for a, b in members)
    first, last = members[0][0], members[-1][1]
    return reply[:first] + b"".join(ordered) + reply[last:]


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says."""

    gen_time: datetime
    serial_number: int
    tsa: str
    """The TSA certificate's subject (RFC 4514)."""
    policy: str
    reply: bytes
    """The TimeStampResp DER that was verified."""


def _signer_certificate(response: TimeStampResponse, trust: TrustAnchors) -> x509.Certificate | None:
    """The one certificate the reply names as its signer's (by issuer and serial number), else the pinned one.

    Two different certificates with the signer's issuer and serial number are refused: only one of
    them can be what the signature was checked with, and nothing else may be read from the other.
    """
    signers = response.signed_data.signer_infos
    if len(signers) != 1:
        raise TimestampError(f"a time-stamp token has one signer, this one has {len(signers)}")
    (signer,) = signers
    matching = [
        certificate
        for certificate in map(x509.load_der_x509_certificate, response.signed_data.certificates)
        if certificate.issuer == signer.issuer and certificate.serial_number == signer.serial_number
    ]
    if len(matching) > 1:
        raise TimestampError("the reply holds two different certificates for its signer")
    return matching[0] if matching else trust.tsa_cert


def _readable(exc: Exception) -> str:
    """The OpenSSL reasons of a verification error, without its error stack dump."""
    message = str(exc)
    reasons = re.findall(r'reason: "([^"]*)"(?:[^}]*?data: "([^"]*)")?', message)
    if not reasons:
        return message
    return "; ".join(f"{reason} ({data})" if data else reason for reason, data in reasons)


def verify_timestamp(der: bytes, text: str, trust: TrustAnchors, *, nonce: int | None = None) -> TimestampInfo:
    """Check a time-stamp reply or token over a checkpoint's note text (see the module docstring)."""
    if len(der) > MAX_REPLY_BYTES:
        raise TimestampError(f"time-stamp reply is larger than {MAX_REPLY_BYTES} bytes")
    reply = der_sorted_certificates(as_reply(der))
    try:  # the reply is parsed lazily: any field may turn out malformed
        return _verify(reply, text, trust, nonce)
    except VerificationError as exc:
        raise TimestampError(f"time-stamp does not verify: {_readable(exc)}") from None
    except TimestampError:
        raise
    except Exception as exc:  # hostile bytes surface as ValueError, KeyError, InvalidVersion, ... from the parsers
        raise TimestampError(f"malformed time-stamp reply: {type(exc).__name__}: {exc}") from None


def _check_versions(response: TimeStampResponse) -> None:
    """RFC 5652 §5.1: SignedData of non-data content is version 3 (4 or 5 with other certificate kinds);
    §5.3: a SignerInfo naming its certificate by issuer and serial number is version 1.
    These fields are outside the signature, so pinning them keeps a token from being re-encoded."""
    if response.signed_data.version not in (3, 4, 5):
        raise TimestampError(f"SignedData version {response.signed_data.version} is not 3, 4 or 5 (RFC 5652)")
    versions = {signer.version for signer in response.signed_data.signer_infos}
    if versions != {1}:
        raise TimestampError(f"SignerInfo version {sorted(versions)} is not 1 (RFC 5652 issuerAndSerialNumber)")


def _verify(reply: bytes, text: str, trust: TrustAnchors, nonce: int | None) -> TimestampInfo:
    response = decode_timestamp_response(reply)
    if response.status != 0:
        detail = "; ".join(response.status_string)
        raise TimestampError(f"the TSA did not grant the time-stamp (status {response.status}) {detail}".strip())
    _check_versions(response)
    info = response.tst_info
    if info.message_imprint.hash_algorithm != SHA256:
        algorithm = info.message_imprint.hash_algorithm.dotted_string
        raise TimestampError(f"the time-stamp imprint uses hash {algorithm}, not SHA-256")
    if info.message_imprint.message != imprint(text):
        raise TimestampError("the time-stamp is over another message: not this checkpoint")
    signer = _signer_certificate(response, trust)
    verifier = VerifierBuilder(tsa_certificate=trust.tsa_cert, roots=list(trust.roots), nonce=nonce).build()
    verifier.verify(response, imprint(text))
    tsa = signer.subject.rfc4514_string() if signer is not None else ""
    return TimestampInfo(info.gen_time, info.serial_number, tsa, info.policy.dotted_string, reply)
