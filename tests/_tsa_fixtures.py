"""A real RFC 3161 Time-Stamp Authority for the tests: `openssl ts -reply` behind a loopback HTTP server.

`make_pki` creates a test CA and a TSA certificate it issues (extendedKeyUsage critical
timeStamping, as RFC 3161 §2.3 requires) with `cryptography`; `OpensslTsa` answers
POSTed TimeStampReqs (application/timestamp-query) with what `openssl ts -reply` makes of
them. `openssl_verify` is OpenSSL's own `ts -verify`, an independent check of a reply.

Without the `openssl` command the tests skip, except under CI=true, where it is a failure.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TSA_POLICY = "1.3.6.1.4.1.32473.1.1"
"""A policy OID under the documentation arc (RFC 5612)."""


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true, where it must be installed")
    pytest.skip(reason)


def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        _unavailable("the openssl command is not installed (apt-get install openssl)")
    return found


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not sign_certs,
        content_commitment=not sign_certs,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=sign_certs,
        crl_sign=sign_certs,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Pki:
    """A CA and the TSA certificate it issued, as PEM files in `root`."""

    root: Path
    ca_cert: Path
    tsa_cert: Path
    tsa_key: Path


def make_pki(root: Path, name: str = "Test") -> Pki:
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} Root CA"))
        .issuer_name(_name(f"{name} Root CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign_certs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} TSA"))
        .issuer_name(ca.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign_certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(root, root / "ca.pem", root / "tsa.pem", root / "tsa.key")
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.tsa_cert.write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    pki.tsa_key.write_bytes(
        tsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    os.chmod(pki.tsa_key, 0o600)
    return pki


_CONFIG = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
serial = {serial}
crypto_device = builtin
signer_cert = {cert}
signer_key = {key}
signer_digest = sha256
default_policy = {policy}
other_policies = {policy}
certs = {chain}
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class OpensslTsa:
    """`openssl ts -reply` answering RFC 3161 requests POSTed to http://127.0.0.1:<port>/tsr.

    `mode` makes it misbehave: "ok", "http-500", "wrong-type" (a reply with another content
    type), "other-message" (a valid reply for another message), "flip" (one byte of the reply changed).
    """

    def __init__(self, pki: Pki, chain: Path | None = None) -> None:
        """`chain`: the certificates sent with the TSA's own (default: the CA's, as real TSAs send their chain)."""
        self.pki = pki
        self.mode = "ok"
        self.requests = 0
        self.replies: list[bytes] = []
        self.answered = threading.Condition()
        self._lock = threading.Lock()
        self._binary = openssl()
        self._work = Path(tempfile.mkdtemp(prefix="tsa-", dir=pki.root))
        (self._work / "serial").write_text("01\n")
        self._config = self._work / "tsa.cnf"
        self._config.write_text(
            _CONFIG.format(
                serial=self._work / "serial",
                cert=pki.tsa_cert,
                key=pki.tsa_key,
                policy=TSA_POLICY,
                chain=chain or pki.ca_cert,
            )
        )
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, kind, reply = owner.answer(self.headers.get("Content-Type", ""), body)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsr"
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-tsa", daemon=True)
        self._thread.start()

    def reply(self, query: bytes) -> bytes:
        """What `openssl ts -reply` answers to a DER TimeStampReq."""
        with self._lock:
            query_file = self._work / "query.tsq"
            reply_file = self._work / "reply.tsr"
            query_file.write_bytes(query)
            command = [self._binary, "ts", "-reply", "-config", str(self._config), "-queryfile", str(query_file)]
            proc = subprocess.run(
                [*command, "-out", str(reply_file)],
                capture_output=True,
                timeout=30,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"openssl ts -reply failed: {proc.stderr.decode(errors='replace')}")
            return reply_file.read_bytes()

    def answer(self, content_type: str, body: bytes) -> tuple[int, str, bytes]:
        mode = self.mode
        if mode == "http-500":
            status, kind, reply = 500, "text/plain", b"TSA down"
        elif content_type != "application/timestamp-query":
            status, kind, reply = 415, "text/plain", b"want application/timestamp-query"
        elif mode == "other-message":
            status, kind, reply = 200, "application/timestamp-reply", self.reply(query_for(b"another checkpoint\n"))
        else:
            status, kind, reply = 200, "application/timestamp-reply", self.reply(body)
            if mode == "wrong-type":
                kind = "text/html"
            if mode == "flip":
                changed = bytearray(reply)
                changed[len(changed) // 2] ^= 0x01
                reply = bytes(changed)
        with self.answered:
            self.requests += 1
            self.replies.append(reply)
            self.answered.notify_all()
        return status, kind, reply

    def wait_for_requests(self, count: int, timeout: float = 20) -> None:
        with self.answered:
            if not self.answered.wait_for(lambda: self.requests >= count, timeout):
                raise AssertionError(f"the TSA got {self.requests} requests, expected {count} within {timeout}s")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def query_for(data: bytes, *, digest: str = "sha256", nonce: bool = True) -> bytes:
    """A DER TimeStampReq over the `digest` of `data`, made by `openssl ts -query` (certReq set)."""
    with tempfile.TemporaryDirectory() as work:
        data_file = Path(work) / "data"
        data_file.write_bytes(data)
        args = [openssl(), "ts", "-query", "-data", str(data_file), f"-{digest}", "-cert"]
        proc = subprocess.run([*args, *([] if nonce else ["-no_nonce"])], capture_output=True, timeout=30, check=True)
        return proc.stdout


def openssl_verify(reply: bytes, data: bytes, ca_cert: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """`openssl ts -verify -data DATA -in REPLY -CAfile CA`: OpenSSL's own check of a TimeStampResp."""
    reply_file, data_file = work / "check.tsr", work / "check.data"
    reply_file.write_bytes(reply)
    data_file.write_bytes(data)
    return subprocess.run(
        [openssl(), "ts", "-verify", "-data", str(data_file), "-in", str(reply_file), "-CAfile", str(ca_cert)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextmanager
def running_tsa(pki: Pki, chain: Path | None = None) -> Iterator[OpensslTsa]:
    tsa = OpensslTsa(pki, chain)
    try:
        yield tsa
    finally:
        tsa.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    openssl()
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA and TSA, trusted by nobody in the tests."""
    return make_pki(tmp_path_factory.mktemp("other-pki"), "Other")


@pytest.fixture
def tsa(pki: Pki) -> Iterator[OpensslTsa]:
    with running_tsa(pki) as server:
        yield server
