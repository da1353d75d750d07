"""Elastic's ECS field definitions (EcsFlat of npm @elastic/ecs, generated from ecs_flat.yml), via node.

The tarball comes from the npm registry, pinned by its sha512 integrity and
cached (see tests/_github_fixtures.py); node turns the generated module into
JSON. Without network or node the tests that need it skip, except under CI=true.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from _github_fixtures import NpmPackage, npm_tarball, unavailable

__all__ = ["ECS_PACKAGE", "ecs_flat"]

ECS_PACKAGE = NpmPackage(
    "@elastic/ecs",
    "9.4.0",
    "sha512-znk6Jr38KNRsyUKstormNX4QKtqnwQY1EWqrMCWIg/nY6dC1imSxzrdR6xuljxnY6JHj+/9NdTiRohVbeUEA/Q==",
)
_MODULE = "package/build/commonjs/ecs_flat.js"


@cache
def ecs_flat() -> dict[str, Any]:
    """Every ECS field by its flat name: type, level, allowed_values (with expected_event_types), ..."""
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed (Debian package nodejs): it reads @elastic/ecs's field definitions")
    tarball = npm_tarball(ECS_PACKAGE)
    with tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(tarball, "r:gz") as archive:
            member = archive.getmember(_MODULE)
            handle = archive.extractfile(member)
            assert handle is not None
            module = Path(scratch) / "ecs_flat.js"
            module.write_bytes(handle.read())
        script = f"process.stdout.write(JSON.stringify(require({json.dumps(str(module))}).EcsFlat))"
        output = subprocess.run([node, "-e", script], capture_output=True, check=True, timeout=60).stdout
    fields: dict[str, Any] = json.loads(output)
    return fields
