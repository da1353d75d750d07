"""`sealtrail retention plan|apply` and `sealtrail erase`, run as a user would."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from _support import devsecops_event, one_error_line
from conftest import CliResult
from sealtrail.datadir import DataDir
from sealtrail.event import prepare

CONFIG = """
[retention]
default_days = 365

[[retention.policy]]
name = "ssh-logs"
source = "syslog"
kind = "auth.*"
days = 90

[[retention.hold]]
name = "incident-4711"
query = "actor:mallory"
"""

LATER = "2030-01-01T00:00:00Z"
Cli = Callable[..., CliResult]


@pytest.fixture
def filled(data_dir: DataDir, tmp_path: Path) -> tuple[DataDir, Path]:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append([prepare(devsecops_event(n)) for n in range(20)])
    config = tmp_path / "sealtrail.toml"
    config.write_text(CONFIG)
    return data_dir, config


def test_plan_apply_verify(filled: tuple[DataDir, Path], cli: Cli) -> None:
    directory, config = filled
    args = ("--dir", directory.path, "--config", config, "--now", LATER)
    planned = cli("retention", "plan", *args, "--json")
    assert planned.code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    by_policy = {p["policy"]: p for p in plan["policies"]}
    assert by_policy["ssh-logs"]["ranges"] == [[4, 4], [14, 14]]
    assert by_policy["default"]["held"] == [{"hold": "incident-4711", "count": 2, "ranges": [[9, 9], [19, 19]]}]
    assert (plan["redact"], plan["withheld"]) == (18, 2)

    table = cli("retention", "plan", *args)
    assert "ssh-logs" in table.text and "would redact 18 event bodies; legal holds keep 2" in table.text

    applied = cli("retention", "apply", *args)
    assert applied.code == 0, applied.stderr
    assert "policy default: redacted 16 bodies" in applied.text
    assert "policy ssh-logs: redacted 2 bodies (4, 14); record at index 21" in applied.text

    verified = cli("verify", "--dir", directory.path)
    assert verified.code == 0, verified.stderr
    assert "redacted: 18 entries (0-8, 10-18), accounted for by the records at 20, 21" in verified.text

    again = cli("retention", "apply", *args)
    assert f"nothing to redact as of {LATER[:-1]}.000000Z" in again.text

    entry = cli("entry", "--dir", directory.path, "--index", "3")
    assert entry.code == 1 and "entry 3 was redacted" in one_error_line(entry.stderr)

    exported = cli("tiles", "export", directory.path.parent / "tiles", "--dir", directory.path)
    assert exported.code == 0, exported.stderr
    assert "3 entry bundles span redacted entries: written under redacted/" in exported.stderr
    tiles = cli("tiles", "verify", directory.path.parent / "tiles", "--vkey", directory.vkey)
    assert tiles.code == 0, tiles.stderr
    assert "redacted: 18 entries (0-8, 10-18), accounted for by the records at 20, 21" in tiles.text


def test_erase_by_actor(filled: tuple[DataDir, Path], cli: Cli) -> None:
    directory, config = filled
    refused = cli("erase", "--dir", directory.path, "--actor", "octocat")
    assert refused.code == 1
    assert "pass --yes" in one_error_line(refused.stderr.replace("note: no config file, so no legal holds apply\n", ""))

    dry = cli("erase", "--dir", directory.path, "--config", config, "--actor", "octocat", "--dry-run")
    assert "matches 4 event bodies (0, 5, 10, 15)" in dry.text

    held = cli("erase", "--dir", directory.path, "--config", config, "--actor", "mallory", "--yes", "--request", "R-9")
    assert held.code == 0, held.stderr
    assert "legal hold incident-4711 keeps 2 of them (9, 19)" in held.text
    assert "erasure R-9: nothing to redact; request recorded at index 20" in held.text

    done = cli("erase", "--dir", directory.path, "--config", config, "--actor", "octocat", "--yes")
    assert done.code == 0, done.stderr
    assert "redacted 4 bodies (0, 5, 10, 15); record at index 21" in done.text
    assert cli("verify", "--dir", directory.path).code == 0


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("[retention]\ndefault_days = 0\n", "default_days: expected a whole number of days"),
        ("[retention]\n", "nothing would expire"),
        ("[retention\n", "sealtrail.toml"),
    ],
)
def test_bad_config_is_one_error_line(filled: tuple[DataDir, Path], cli: Cli, config_text: str, message: str) -> None:
    directory, config = filled
    config.write_text(config_text)
    result = cli("retention", "apply", "--dir", directory.path, "--config", config)
    assert result.code == 1
    assert message in one_error_line(result.stderr)
