"""Real GitHub payloads from pinned npm packages, downloaded once and cached (not a test module).

Imported as `_github_fixtures` by tests/sources/test_github.py and test_hec.py. A package's
tarball comes from the npm registry with urllib; its sha512 `integrity` is checked against the
registry's metadata and against the value pinned here, then it is kept under
$SEALTRAIL_TEST_CACHE (default ~/.cache/sealtrail-tests) and re-checked on every use.
Without network the tests that need it skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

REGISTRY = "https://registry.npmjs.org"
TIMEOUT = 120


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str
    """The registry's `dist.integrity` for this version (pinned: a published version never changes)."""


WEBHOOK_EXAMPLES = NpmPackage(
    "@octokit/webhooks-examples",
    "7.6.1",
    "sha512-De6U3XB6O3DtCa7bKgCMzTHdeopqqZ6SNivMYJnK65ierKL1AnNIA0tkRYCRS7lwGT792d+Ps1WbfHlso6MynQ==",
)
"""Example webhook payloads contributed by the community (octokit/webhooks)."""

OPENAPI = NpmPackage(
    "@octokit/openapi",
    "23.0.2",
    "sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg==",
)
"""GitHub's official OpenAPI descriptions: their `audit-log` examples are real audit-log events."""


_UNREACHABLE: dict[NpmPackage, str] = {}


def cache_dir() -> Path:
    """$SEALTRAIL_TEST_CACHE, else ~/.cache/sealtrail-tests."""
    configured = os.environ.get("SEALTRAIL_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "sealtrail-tests"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, where every test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the download must work)")
    pytest.skip(reason)


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "sealtrail-tests"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        data: bytes = response.read()
    return data


def npm_tarball(package: NpmPackage) -> Path:
    """The package's tarball in the cache, downloaded and verified if missing."""
    safe = package.name.replace("@", "").replace("/", "__")
    path = cache_dir() / "npm" / f"{safe}-{package.version}.tgz"
    if path.exists():
        if _integrity(path.read_bytes()) == package.integrity:
            return path
        path.unlink()  # corrupt or truncated: fetch it again
    if package in _UNREACHABLE:  # tried in this process already: do not wait for the network again
        unavailable(_UNREACHABLE[package])
    url = f"{REGISTRY}/{package.name}/{package.version}"
    try:
        metadata: dict[str, Any] = json.loads(_fetch(url))
        dist = metadata["dist"]
        if dist["integrity"] != package.integrity:
            pytest.fail(f"{package.name}@{package.version}: the registry's integrity differs from the pinned one")
        tarball = str(dist["tarball"])
        if not tarball.startswith(REGISTRY + "/"):
            pytest.fail(f"{package.name}: unexpected tarball URL {tarball!r}")
        data = _fetch(tarball)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        _UNREACHABLE[package] = f"cannot download {package.name}@{package.version} from the npm registry: {exc}"
        unavailable(_UNREACHABLE[package])
    if _integrity(data) != package.integrity:
        pytest.fail(f"{package.name}@{package.version}: downloaded tarball fails its sha512 integrity check")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as part:
        part.write(data)
    os.replace(part.name, path)  # atomic: parallel test workers never see half a file
    return path


def tar_json_members(tarball: Path, wanted: str | None = None) -> dict[str, Any]:
    """The JSON members of a tarball whose names end with `wanted` (all .json when None), parsed."""
    out: dict[str, Any] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            if not member.isfile() or not member.name.endswith(".json"):
                continue
            if wanted is not None and not member.name.endswith(wanted):
                continue
            handle = archive.extractfile(member)
            assert handle is not None
            out[member.name] = json.loads(handle.read())
    return out


@dataclass(frozen=True)
class WebhookExample:
    """One example delivery: where it came from, its X-GitHub-Event and its payload."""

    origin: str
    event: str
    number: int
    payload: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.origin} {self.event}[{self.number}]"


def webhook_examples() -> list[WebhookExample]:
    """Every example payload of every event, for api.github.com and each GHES version in the package."""
    members = tar_json_members(npm_tarball(WEBHOOK_EXAMPLES), "/index.json")
    examples: list[WebhookExample] = []
    for name, definitions in sorted(members.items()):
        origin = name.split("/")[-2]
        for definition in definitions:
            for number, payload in enumerate(definition["examples"]):
                examples.append(WebhookExample(origin, definition["name"], number, payload))
    return examples


def audit_log_examples() -> list[dict[str, Any]]:
    """The distinct `audit-log` example events of GitHub's OpenAPI descriptions (GHEC and GHES)."""
    events: dict[str, dict[str, Any]] = {}
    tarball = npm_tarball(OPENAPI)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            name = member.name
            if not (member.isfile() and name.startswith("package/generated/") and name.endswith(".json")):
                continue
            if name.endswith(".deref.json"):  # the same examples, dereferenced
                continue
            handle = archive.extractfile(member)
            assert handle is not None
            description = json.loads(handle.read())
            example = description.get("components", {}).get("examples", {}).get("audit-log")
            if example is None:
                continue
            for event in example["value"]:
                events.setdefault(json.dumps(event, sort_keys=True), event)
    return list(events.values())
