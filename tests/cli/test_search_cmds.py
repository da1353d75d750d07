"""`sealtrail search`, run as a user would: filters, formats, proofs, cursors, reindex, one-line errors."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from _support import ORIGIN, devsecops_event, ndjson, one_error_line, rfc6962_leaf, stored_entries
from conftest import CliResult
from sealtrail.datadir import DataDir
from sealtrail.tlogproof import verify_tlog_proof

Cli = Callable[..., CliResult]
COUNT = 30


@pytest.fixture
def filled(data_dir: DataDir, cli: Cli) -> DataDir:
    appended = cli("append", "--dir", data_dir.path, "-", stdin=ndjson(devsecops_event(n, "cli") for n in range(COUNT)))
    assert appended.code == 0, appended.stderr
    return data_dir


def _lines(result: CliResult) -> list[dict[str, object]]:
    assert result.code == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_jsonl_results_are_the_stored_events_in_index_order(filled: DataDir, cli: Cli) -> None:
    found = _lines(cli("search", "--dir", filled.path, "--format", "jsonl", "kind:auth", "--env", "prod"))
    entries = dict(stored_entries(filled.db))
    expected = [i for i, e in entries.items() if orjson.loads(e)["kind"].startswith("auth.") and b'"prod"' in e]
    assert [line["index"] for line in found] == expected and expected
    for line in found:
        entry = entries[int(str(line["index"]))]
        assert line["event"] == orjson.loads(entry)
        assert base64.b64decode(str(line["leaf_hash"])) == rfc6962_leaf(entry)


def test_query_words_and_options_combine_and_conflicts_are_one_line_errors(filled: DataDir, cli: Cli) -> None:
    same = cli("search", "-d", filled.path, "-f", "jsonl", "--query", "source:vault-audit", "--outcome", "failure")
    assert [line["index"] for line in _lines(same)] == [n for n in range(COUNT) if n % 10 == 6 and n % 4 == 0]
    conflict = cli("search", "-d", filled.path, "--query", "kind:deploy", "--kind", "auth")
    assert conflict.code == 1
    assert one_error_line(conflict.stderr) == "error: kind is given twice (deploy and auth)"
    bad = cli("search", "-d", filled.path, "outcome:nope")
    assert bad.code == 1 and "outcome: expected one of" in one_error_line(bad.stderr)


def test_csv_with_proofs_verifies_offline(filled: DataDir, cli: Cli) -> None:
    result = cli("search", "-d", filled.path, "-f", "csv", "--with-proofs", "--source", "acme-github", "--limit", "0")
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.text)))
    header = result.text.splitlines()[0].split(",")
    assert header == [
        "index",
        "leaf_hash",
        "time",
        "source",
        "kind",
        "action",
        "outcome",
        "actor",
        "target",
        "env",
        "proof",
    ]
    assert [int(row["index"]) for row in rows] == [n for n in range(COUNT) if n % 10 in (0, 1, 7)]
    entries = dict(stored_entries(filled.db))
    vkey = filled.verifier()
    for row in rows:
        entry = entries[int(row["index"])]
        proof, signed, _ = verify_tlog_proof(row["proof"].encode(), ORIGIN, [vkey], entry)
        assert proof.index == int(row["index"]) and signed.checkpoint.size == COUNT
        event = orjson.loads(entry)
        assert (row["kind"], row["source"], row["time"]) == (event["kind"], "github:acme-github", event["time"])


def test_limit_reports_a_cursor_that_continues(filled: DataDir, cli: Cli) -> None:
    first = cli("search", "-d", filled.path, "-f", "jsonl", "--limit", "3", "--outcome", "success")
    assert len(_lines(first)) == 3
    cursor = first.stderr.strip().removeprefix("more results: --cursor ")
    rest = cli("search", "-d", filled.path, "-f", "jsonl", "--limit", "0", "--outcome", "success", "--cursor", cursor)
    everything = cli("search", "-d", filled.path, "-f", "jsonl", "--limit", "0", "--outcome", "success")
    assert [x["index"] for x in _lines(first) + _lines(rest)] == [x["index"] for x in _lines(everything)]
    assert rest.stderr == ""


def test_table_and_reindex(filled: DataDir, cli: Cli) -> None:
    result = cli("search", "-d", filled.path, "--reindex", "-f", "table", "--kind", "deploy", "--limit", "2")
    assert result.code == 0, result.stderr
    assert "indexed 30 events" in result.stderr
    assert "deploy.production" in result.text and "release-bot" in result.text


def test_no_log_is_a_one_line_error(tmp_path: Path, cli: Cli) -> None:
    result = cli("search", "--dir", tmp_path / "none", "kind:auth")
    assert result.code == 1
    assert "no log in" in one_error_line(result.stderr)
