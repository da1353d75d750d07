"""Shared fixtures: golden vectors, fresh logs, and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from _s3 import s3_server  # noqa: F401  (session fixture: SeaweedFS S3 with Object Lock, for the archive tests)
from sealtrail.datadir import DataDir
from sealtrail.log import Log

REPO = Path(__file__).resolve().parent.parent
VECTORS = (REPO.parent / "shared" / "vectors").resolve()
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def vectors() -> Path:
    """../shared/vectors: golden data copied from transparency-dev, Go and C2SP."""
    if not VECTORS.is_dir():
        pytest.fail(f"golden vectors not found at {VECTORS}")
    return VECTORS


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    """A freshly initialised log directory (origin test.sealtrail.local/log)."""
    directory = DataDir(tmp_path / "log")
    directory.init("test.sealtrail.local/log")
    return directory


@pytest.fixture
def log(data_dir: DataDir) -> Iterator[Log]:
    """An open sequencer on data_dir that signs a checkpoint after every batch."""
    opened = data_dir.open_log(checkpoint_interval=0)
    try:
        yield opened
    finally:
        opened.close()


@dataclass
class CliResult:
    code: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode()


def run_cli(
    *args: str | os.PathLike[str],
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str | None] | None = None,
) -> CliResult:
    """Run `python -m sealtrail ARGS` in a subprocess, as a user would.

    `env` adds variables to the environment (a None value removes one);
    SEALTRAIL_DIR is removed unless given there.
    """
    environment = {k: v for k, v in os.environ.items() if k != "SEALTRAIL_DIR"}
    environment["COLUMNS"] = "200"
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    proc = subprocess.run(
        [sys.executable, "-m", "sealtrail", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=environment,
        timeout=300,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Run the real `sealtrail` command in a subprocess: cli("verify", "--dir", d)."""
    return run_cli
