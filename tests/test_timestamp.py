"""RFC 3161 time-stamps over checkpoint texts: made by a real `openssl ts -reply` TSA, checked by us and by OpenSSL."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rfc3161_client import decode_timestamp_response

from _tsa_fixtures import (  # noqa: F401  (pki, other_pki, tsa: fixtures)
    TSA_POLICY,
    OpensslTsa,
    Pki,
    openssl_verify,
    other_pki,
    pki,
    query_for,
    running_tsa,
    tsa,
)
from sealtrail.checkpoint import Checkpoint
from sealtrail.timestamp import (
    TimestampError,
    as_reply,
    der_sorted_certificates,
    imprint,
    load_trust,
    timestamp_request,
    verify_timestamp,
)

TEXT = Checkpoint("ts.sealtrail.test/log", 42, hashlib.sha256(b"root 42").digest()).text()
OTHER = Checkpoint("ts.sealtrail.test/log", 43, hashlib.sha256(b"root 43").digest()).text()


def _stamp(tsa: OpensslTsa, text: str = TEXT) -> tuple[bytes, int]:  # noqa: F811
    request = timestamp_request(text)
    assert request.nonce is not None
    return tsa.reply(request.as_bytes()), request.nonce


def test_a_reply_verifies_and_says_when(tsa: OpensslTsa, pki: Pki) -> None:  # noqa: F811
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    reply, nonce = _stamp(tsa)
    info = verify_timestamp(reply, TEXT, load_trust(pki.ca_cert), nonce=nonce)
    assert before <= info.gen_time <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    assert info.tsa == "CN=Test TSA"
    assert info.policy == TSA_POLICY
    assert info.reply == der_sorted_certificates(reply)
    tst = decode_timestamp_response(info.reply).tst_info
    assert tst.message_imprint.message == imprint(TEXT) == hashlib.sha256(TEXT.encode()).digest()
    assert tst.nonce == nonce


def test_openssl_verifies_the_same_reply_over_the_checkpoint_text(
    tsa: OpensslTsa,  # noqa: F811
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    reply, _ = _stamp(tsa)
    kept = verify_timestamp(reply, TEXT, load_trust(pki.ca_cert)).reply  # what sealtrail stores
    for checked_reply in (reply, kept):
        checked = openssl_verify(checked_reply, TEXT.encode(), pki.ca_cert, tmp_path)
        assert checked.returncode == 0, checked.stderr
        assert "Verification: OK" in checked.stdout
        assert openssl_verify(checked_reply, OTHER.encode(), pki.ca_cert, tmp_path).returncode != 0


def test_the_certificate_set_is_put_in_der_order(tsa: OpensslTsa, pki: Pki) -> None:  # noqa: F811
    """OpenSSL sends its chain in chain order; DER (and rfc3161-client) wants the SET OF sorted."""
    reply, _ = _stamp(tsa)
    sorted_reply = der_sorted_certificates(reply)
    tsa_der = x509.load_pem_x509_certificate(pki.tsa_cert.read_bytes()).public_bytes(Encoding.DER)
    ca_der = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()).public_bytes(Encoding.DER)
    first, second = sorted([tsa_der, ca_der])
    assert sorted_reply.index(first) < sorted_reply.index(second)
    assert sorted(sorted_reply) == sorted(reply) and len(sorted_reply) == len(reply)  # a permutation of the set
    assert der_sorted_certificates(sorted_reply) == sorted_reply
    assert decode_timestamp_response(sorted_reply).tst_info.message_imprint.message == imprint(TEXT)


def test_a_bare_token_verifies_too(tsa: OpensslTsa, pki: Pki) -> None:  # noqa: F811
    reply = der_sorted_certificates(_stamp(tsa)[0])
    token = decode_timestamp_response(reply).time_stamp_token()
    assert token != reply
    assert as_reply(token) == reply  # openssl's reply is exactly status granted + the token
    assert verify_timestamp(token, TEXT, load_trust(pki.ca_cert)).reply == reply


def test_a_second_altered_copy_of_the_signer_certificate_is_refused(pki: Pki) -> None:  # noqa: F811
    """Two certificates with the signer's issuer and serial: which one would the TSA's name be read from?"""
    with running_tsa(pki, chain=pki.tsa_cert) as doubled:  # the TSA's certificate sent twice
        reply, _ = _stamp(doubled)
    tsa_der = x509.load_pem_x509_certificate(pki.tsa_cert.read_bytes()).public_bytes(Encoding.DER)
    first = reply.index(tsa_der)
    second = reply.index(tsa_der, first + 1)
    assert verify_timestamp(reply, TEXT, load_trust(pki.ca_cert)).tsa == "CN=Test TSA"  # identical copies: fine
    subject = bytes.fromhex("550403") + b"\x0c\x08Test TSA"  # commonName "Test TSA"
    at = reply.index(subject, second) + 2
    altered = bytearray(reply)
    altered[at] ^= 0x04  # commonName (2.5.4.3) becomes localityName (2.5.4.7) in the second copy only
    with pytest.raises(TimestampError, match="two different certificates for its signer"):
        verify_timestamp(bytes(altered), TEXT, load_trust(pki.ca_cert))


def test_a_token_for_another_checkpoint_is_refused(tsa: OpensslTsa, pki: Pki) -> None:  # noqa: F811
    reply, _ = _stamp(tsa, OTHER)
    with pytest.raises(TimestampError, match="another message: not this checkpoint"):
        verify_timestamp(reply, TEXT, load_trust(pki.ca_cert))


def test_another_ca_is_refused(tsa: OpensslTsa, other_pki: Pki) -> None:  # noqa: F811
    reply, _ = _stamp(tsa)
    with pytest.raises(TimestampError, match="does not verify: certificate verify error"):
        verify_timestamp(reply, TEXT, load_trust(other_pki.ca_cert))


def test_a_pinned_tsa_certificate(tsa: OpensslTsa, pki: Pki, other_pki: Pki) -> None:  # noqa: F811
    reply, _ = _stamp(tsa)
    assert verify_timestamp(reply, TEXT, load_trust(pki.ca_cert, pki.tsa_cert)).tsa == "CN=Test TSA"
    with pytest.raises(TimestampError, match="does not verify"):
        verify_timestamp(reply, TEXT, load_trust(pki.ca_cert, other_pki.tsa_cert))


def test_the_nonce_of_the_request_must_come_back(tsa: OpensslTsa, pki: Pki) -> None:  # noqa: F811
    reply, nonce = _stamp(tsa)
    with pytest.raises(TimestampError, match="Nonce mismatch"):
        verify_timestamp(reply, TEXT, load_trust(pki.ca_cert), nonce=nonce + 1)


ECDSA_WITH_SHA256 = bytes.fromhex("06082a8648ce3d040302")


def test_every_changed_byte_is_refused(tsa: OpensslTsa, pki: Pki) -> None:  # noqa: F811
    """Each byte of a reply, changed, is refused with a TimestampError, except where nothing depends on it:
    the copy of the root the TSA sends along (the configured root is what the chain is checked against)
    and the SignerInfo's signatureAlgorithm, which CMS leaves outside the signature and OpenSSL takes from
    the key. Those changes must leave everything the token proves as it was."""
    reply, nonce = _stamp(tsa)
    trust = load_trust(pki.ca_cert)
    proven = verify_timestamp(reply, TEXT, trust, nonce=nonce)
    ca_der = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()).public_bytes(Encoding.DER)
    ca_at = reply.index(ca_der)
    oid_at = reply.rindex(ECDSA_WITH_SHA256) + 2  # the last one is the SignerInfo's (the others are in certificates)
    unused = set(range(ca_at, ca_at + len(ca_der))) | set(range(oid_at, oid_at + len(ECDSA_WITH_SHA256) - 2))
    accepted = []
    for at in range(len(reply)):
        changed = bytearray(reply)
        changed[at] ^= 0x04
        try:
            info = verify_timestamp(bytes(changed), TEXT, trust, nonce=nonce)
        except TimestampError:
            continue
        accepted.append(at)
        assert (info.gen_time, info.serial_number, info.tsa, info.policy) == (
            proven.gen_time,
            proven.serial_number,
            proven.tsa,
            proven.policy,
        )
    assert set(accepted) <= unused, [at for at in accepted if at not in unused]


def test_the_imprint_must_be_sha256_of_the_text(tsa: OpensslTsa, pki: Pki) -> None:  # noqa: F811
    """A valid time-stamp over SHA-512 of the same text is not what sealtrail asks for: refused."""
    same = tsa.reply(query_for(TEXT.encode()))  # a SHA-256 query made by openssl, not by sealtrail
    assert verify_timestamp(same, TEXT, load_trust(pki.ca_cert)).tsa == "CN=Test TSA"
    sha512 = tsa.reply(query_for(TEXT.encode(), digest="sha512"))
    with pytest.raises(TimestampError, match=r"imprint uses hash 2\.16\.840\.1\.101\.3\.4\.2\.3, not SHA-256"):
        verify_timestamp(sha512, TEXT, load_trust(pki.ca_cert))


@pytest.mark.parametrize(
    ("der", "message"),
    [
        (b"", "not a DER time-stamp"),
        (b"junk", "not a DER time-stamp"),
        (b"\x30\x03\x02\x01\x00", "not a time-stamp reply or token"),
        (b"\x30\x05\x30\x03\x02\x01\x02", "TSA did not grant|malformed"),
        (b"\x30\x82\x01\x00\x30", "trailing or missing bytes"),
    ],
)
def test_malformed_or_refused_replies(der: bytes, message: str, pki: Pki) -> None:  # noqa: F811
    with pytest.raises(TimestampError, match=message):
        verify_timestamp(der, TEXT, load_trust(pki.ca_cert))


def test_trust_files(pki: Pki, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(TimestampError, match="cannot read"):
        load_trust(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(TimestampError, match="no readable certificate"):
        load_trust(garbage)
    assert len(load_trust(pki.ca_cert).roots) == 1
    assert load_trust(None).roots  # the system bundle
