"""Real syslog lines for the tests: the sample logs of Debian's fail2ban package, fetched once and cached.

fail2ban 1.0.2-2 (Debian bookworm) ships, in tests/files/logs/, log lines
from real systems, each preceded by a label saying whether fail2ban's filter
should match it, at what time, and which host (and user) it names:

    # failJSON: { "time": "2005-02-25T14:34:10", "match": true , "host": "194.117.26.69" }
    Feb 25 14:34:10 belka sshd[31602]: Failed password for invalid user ROOT from 194.117.26.69 port 50273 ssh2

The .deb is downloaded with urllib (no apt), checked against the SHA-256 that
Debian's bookworm Packages index gives for it, unpacked in Python (an `ar`
archive holding data.tar.xz) and the few log files kept under
$SEALTRAIL_TEST_CACHE (default ~/.cache/sealtrail-tests). Nothing is copied
into the repository. Without network the tests skip, except under CI=true.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

FAIL2BAN_VERSION = "1.0.2-2"
FAIL2BAN_DEB_URL = f"https://deb.debian.org/debian/pool/main/f/fail2ban/fail2ban_{FAIL2BAN_VERSION}_all.deb"
FAIL2BAN_DEB_SHA256 = "9717b7aeef7b00f0df4c76045cd6dab2755cbe9fc99dbfe3cd114126880ec7f7"
"""As listed for fail2ban 1.0.2-2 in dists/bookworm/main/binary-all/Packages.xz (Size: 451116)."""

LOGS_IN_DEB = "usr/lib/python3/dist-packages/fail2ban/tests/files/logs/"
LOG_FILES = ("sshd", "sshd-journal", "pam-generic", "selinux-ssh")

# fail2ban's labels depend on its filter mode; these tests read them as in "aggressive" mode,
# the one that counts every failure a single line can show. These are all the constraints used.
_CONSTRAINTS = {
    "name == 'sshd'": True,
    "opts.get('mode') != 'aggressive'": False,
    "opts.get('mode') == 'aggressive'": True,
}
_LABEL = re.compile(r"^#+ ?failJSON:(.+)$")


def cache_root() -> Path:
    """$SEALTRAIL_TEST_CACHE, else ~/.cache/sealtrail-tests."""
    configured = os.environ.get("SEALTRAIL_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "sealtrail-tests"


def _unavailable(reason: str) -> NoReturn:
    message = f"fail2ban's sample logs are not available: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: these tests must run)")
    pytest.skip(message)


def ar_member(archive: bytes, name: str) -> bytes:
    """One member of a Unix `ar` archive (the .deb container format)."""
    if not archive.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    pos = 8
    while pos + 60 <= len(archive):
        header = archive[pos : pos + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"corrupt ar header at offset {pos}")
        member = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        start = pos + 60
        if member == name:
            return archive[start : start + size]
        pos = start + size + (size & 1)
    raise KeyError(f"{name} not in the archive")


def _download() -> bytes:
    try:
        with urllib.request.urlopen(FAIL2BAN_DEB_URL, timeout=60) as response:
            body: bytes = response.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        _unavailable(f"downloading {FAIL2BAN_DEB_URL} failed: {exc}")
    digest = hashlib.sha256(body).hexdigest()
    if digest != FAIL2BAN_DEB_SHA256:
        pytest.fail(f"{FAIL2BAN_DEB_URL} has SHA-256 {digest}, expected {FAIL2BAN_DEB_SHA256}: refusing to use it")
    return body


def fail2ban_logs() -> Path:
    """The directory holding LOG_FILES, downloading and unpacking the .deb only when it is not cached."""
    target = cache_root() / f"fail2ban-{FAIL2BAN_VERSION}" / "logs"
    if all((target / name).is_file() for name in LOG_FILES):
        return target
    data = ar_member(_download(), "data.tar.xz")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="logs-", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
            for member in tar.getmembers():
                path = member.name.removeprefix("./")
                if member.isfile() and path.startswith(LOGS_IN_DEB) and path[len(LOGS_IN_DEB) :] in LOG_FILES:
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    (staging / path[len(LOGS_IN_DEB) :]).write_bytes(extracted.read())
        missing = [name for name in LOG_FILES if not (staging / name).is_file()]
        if missing:
            pytest.fail(f"fail2ban {FAIL2BAN_VERSION} has no {', '.join(missing)} in {LOGS_IN_DEB}")
        try:
            staging.rename(target)  # atomic; another worker may have won the race
        except OSError:
            if not all((target / name).is_file() for name in LOG_FILES):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass(frozen=True)
class Sample:
    """One labelled line of a fail2ban test log."""

    file: str
    number: int
    line: str
    label: dict[str, Any]

    @property
    def match(self) -> bool:
        return bool(self.label["match"])

    @property
    def host(self) -> str | None:
        value = self.label.get("host") or self.label.get("ip4") or self.label.get("ip6")
        return str(value) if value else None

    def __str__(self) -> str:
        return f"{self.file}:{self.number}: {self.line}"


def samples(directory: Path, name: str) -> list[Sample]:
    """The labelled lines of one log file that apply in aggressive mode."""
    result: list[Sample] = []
    label: dict[str, Any] | None = None
    for number, line in enumerate((directory / name).read_text(encoding="utf-8").splitlines(), 1):
        found = _LABEL.match(line)
        if found is not None:
            label = json.loads(found[1])
            continue
        if not line.strip() or line.startswith("#") or label is None:
            continue
        constraint = label.get("constraint")
        if constraint is not None and constraint not in _CONSTRAINTS:
            pytest.fail(f"{name}:{number}: unknown fail2ban constraint {constraint!r}")
        if constraint is None or _CONSTRAINTS[constraint]:
            result.append(Sample(name, number, line, label))
        label = None
    return result
