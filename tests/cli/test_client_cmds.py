"""`sealtrail keygen`, `sealtrail emit` and `sealtrail git install-hooks`, run for real against `sealtrail serve`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from _support import free_port, one_error_line, receipts_json, wait_until_serving
from conftest import run_cli
from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.note import b64decode_strict, generate_ed25519, parse_signer, parse_verifier

ZERO = "0" * 40


@dataclass
class Setup:
    """A log whose source `runner` has a freshly generated key and requires signatures; nothing serving yet."""

    root: Path
    data: Path
    skey: Path
    vkey: str
    token: str
    port: int
    spool: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> Mapping[str, str | None]:
        """SEALTRAIL_* for emit (the token goes through the environment, not argv)."""
        return {"SEALTRAIL_URL": self.url, "SEALTRAIL_TOKEN": self.token, "SEALTRAIL_SPOOL": str(self.spool)} | extra

    def start(self) -> None:
        log = (self.root / "serve.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sealtrail", "serve", "--dir", str(self.data), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        wait_until_serving(self.url, self.proc, self.root / "serve.log")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None

    def entries(self) -> list[dict[str, Any]]:
        """The events the sources sent; the server's own (its built-in alerts fire on them) left out."""
        store = DataDir(self.data).store()
        try:
            out = []
            for index in range(store.size()):
                entry = store.entry(index)
                assert entry is not None
                event = json.loads(entry)
                if event["source"]["type"] != "sealtrail":
                    out.append(event)
            return out
        finally:
            store.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """Prepared in-process (the CLI for keys and sources is tested in test_keygen_...)."""
    data = tmp_path / "data"
    DataDir(data).init("emit.sealtrail.test/log")
    signer = generate_ed25519("runner")
    (tmp_path / "keys").mkdir()
    skey = tmp_path / "keys" / "runner.skey"
    skey.write_text(signer.skey + "\n")
    skey.chmod(0o600)
    credentials = Credentials(DataDir(data).credentials)
    credentials.add_source("runner", "api", keys=(signer.verifier.vkey,), require_signature=True)
    token, _ = credentials.create_token("emitter", {"ingest"})
    ready = Setup(tmp_path, data, skey, signer.verifier.vkey, token, free_port(), tmp_path / "spool")
    yield ready
    ready.stop()


def _verified(entry: dict[str, Any], vkey: str) -> None:
    """The stored event's sig checks with `cryptography` over RFC 8785 of the entry less sig and received."""
    verifier = parse_verifier(vkey)
    assert entry["sig"]["key"] == f"{verifier.name}+{verifier.key_id:08x}"
    body = rfc8785.dumps({k: v for k, v in entry.items() if k not in ("sig", "received")})
    Ed25519PublicKey.from_public_bytes(verifier.public_key).verify(b64decode_strict(entry["sig"]["value"]), body)


# --- keygen -----------------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_600_prints_the_vkey_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    made = run_cli("keygen", "--source", "deployer", "--out", out)
    assert made.code == 0, made.stderr
    skey, vkey = out / "deployer.skey", out / "deployer.vkey"
    assert stat.S_IMODE(skey.stat().st_mode) == 0o600
    assert not stat.S_IMODE(vkey.stat().st_mode) & 0o022
    signer = parse_signer(skey.read_text())
    assert signer.name == "deployer"
    assert made.text.strip() == vkey.read_text().strip() == signer.verifier.vkey
    assert signer.skey not in made.stderr and signer.skey not in made.text
    command = f"sealtrail source add deployer --type api --key {signer.verifier.vkey} --require-signature"
    assert command in made.stderr.splitlines()
    before = skey.read_bytes()
    again = run_cli("keygen", "--source", "deployer", "--out", out)
    assert again.code == 1 and "exists" in one_error_line(again.stderr)
    assert skey.read_bytes() == before
    bad = run_cli("keygen", "--source", "a+b", "--out", out)
    assert bad.code == 1 and one_error_line(bad.stderr)
    assert sorted(p.name for p in out.iterdir()) == ["deployer.skey", "deployer.vkey"]

    data = tmp_path / "data"
    DataDir(data).init("keygen.sealtrail.test/log")
    registered = run_cli(*command.split()[1:], "--dir", data)  # the printed command works as printed
    assert registered.code == 0, registered.stderr
    source = Credentials(DataDir(data).credentials).source("deployer")
    assert source is not None and source.keys == (signer.verifier.vkey,) and source.require_signature


# --- emit ---------------------------------------------------------------------------------------------------


def test_emit_signs_and_the_server_stores_it_verified(setup: Setup) -> None:
    setup.start()
    sent = run_cli(
        "emit", "--key", setup.skey, "--kind", "deploy", "--action", "deploy.production", "--outcome", "success",
        "--actor-name", "release-bot", "--target-type", "service", "--target-id", "payments", "--env", "prod",
        "--attr", "version=v2.3.1", "--attr", "commit=4f2a",
        env=setup.env(),
    )  # fmt: skip
    assert sent.code == 0, sent.stderr
    [receipt] = receipts_json(sent.stdout)
    [entry] = setup.entries()
    assert entry["id"] == receipt["id"] and receipt["index"] == 0
    assert entry["source"] == {"type": "api", "id": "runner"}
    assert entry["actor"] == {"name": "release-bot"} and entry["target"] == {"type": "service", "id": "payments"}
    assert entry["attrs"] == {"version": "v2.3.1", "commit": "4f2a"} and entry["env"] == "prod"
    _verified(entry, setup.vkey)
    assert setup.token not in sent.stderr + sent.text


def test_emit_refusals_are_one_line_errors_and_nothing_is_stored_or_spooled(setup: Setup, tmp_path: Path) -> None:
    setup.start()
    unsigned = run_cli("emit", "--kind", "deploy", "--source", "api:runner", env=setup.env())
    assert unsigned.code == 1 and "requires events signed" in one_error_line(unsigned.stderr)
    events = tmp_path / "events.json"
    for label, args in {
        "bad kind": ["--kind", "Not A Kind"],
        "bad outcome": ["--kind", "deploy", "--outcome", "maybe"],
        "bad attr": ["--kind", "deploy", "--attr", "novalue"],
        "bad json": ["--json", str(events)],
        "flags and json": ["--kind", "deploy", "--json", str(events)],
        "no kind": [],
    }.items():
        events.write_text('{"kind": "deploy"')
        result = run_cli("emit", "--key", setup.skey, *args, env=setup.env())
        assert result.code == 1, label
        one_error_line(result.stderr)
    no_url = run_cli("emit", "--kind", "deploy", env=setup.env(SEALTRAIL_URL=""))
    assert no_url.code == 1 and "URL" in one_error_line(no_url.stderr)
    assert setup.entries() == []
    assert not setup.spool.exists() or not list(setup.spool.glob("*.ndjson"))


def test_emit_spools_while_the_server_is_down_and_flush_delivers_exactly_once(setup: Setup, tmp_path: Path) -> None:
    down = run_cli("emit", "--key", setup.skey, "--kind", "deploy", "--retries", "0", env=setup.env())
    assert down.code == 0, down.stderr
    notice = [line for line in down.stderr.splitlines() if line.strip()]
    assert len(notice) == 1 and "unreachable" in notice[0] and "spooled" in notice[0]
    batch = tmp_path / "batch.ndjson"
    batch.write_text('{"kind": "ci.run", "outcome": "success"}\n{"kind": "ci.job", "action": "test"}\n')
    down2 = run_cli("emit", "--key", setup.skey, "--json", batch, "--retries", "1", env=setup.env())
    assert down2.code == 0, down2.stderr
    spooled = receipts_json(down.stdout) + receipts_json(down2.stdout)
    assert len(spooled) == 3 and all(r["spooled"] for r in spooled)
    files = sorted(setup.spool.glob("*.ndjson"))
    assert len(files) == 2 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    kept = tmp_path / "kept"
    shutil.copytree(setup.spool, kept)

    setup.start()
    flushed = run_cli("emit", "--flush", env=setup.env())
    assert flushed.code == 0, flushed.stderr
    receipts = receipts_json(flushed.stdout)
    assert [r["id"] for r in receipts] == [r["id"] for r in spooled]
    assert not any(r.get("duplicate") for r in receipts)
    entries = setup.entries()
    assert [e["id"] for e in entries] == [r["id"] for r in spooled]  # each stored once, in order
    assert [e["kind"] for e in entries] == ["deploy", "ci.run", "ci.job"]
    for entry in entries:
        _verified(entry, setup.vkey)
    assert list(setup.spool.glob("*.ndjson")) == []

    empty = run_cli("emit", "--flush", env=setup.env())
    assert empty.code == 0 and empty.stdout == b""
    for path in kept.glob("*.ndjson"):  # redelivery of what was already delivered
        shutil.copy(path, setup.spool / path.name)
    again = run_cli("emit", "--flush", env=setup.env())
    assert again.code == 0, again.stderr
    duplicates = receipts_json(again.stdout)
    assert [r["id"] for r in duplicates] == [r["id"] for r in spooled] and all(r["duplicate"] for r in duplicates)
    assert len(setup.entries()) == 3


def test_emit_flush_while_still_down_fails_and_keeps_the_spool(setup: Setup) -> None:
    assert run_cli("emit", "--key", setup.skey, "--kind", "deploy", "--retries", "0", env=setup.env()).code == 0
    result = run_cli("emit", "--flush", "--retries", "0", env=setup.env())
    assert result.code == 1 and "127.0.0.1" in one_error_line(result.stderr)
    assert len(list(setup.spool.glob("*.ndjson"))) == 1


# --- git hooks ----------------------------------------------------------------------------------------------


def _git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SEALTRAIL_"))}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
        GIT_AUTHOR_NAME="Alice Example",
        GIT_AUTHOR_EMAIL="alice@example.com",
        GIT_COMMITTER_NAME="Alice Example",
        GIT_COMMITTER_EMAIL="alice@example.com",
    )
    return env


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=_git_env(repo.parent), input=stdin, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _hook(repo: Path, name: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run a hook the way git does (cwd: the work tree; arguments; refs on stdin)."""
    hook = repo / ".git" / "hooks" / name
    return subprocess.run(
        [str(hook), *args], cwd=repo, env=_git_env(repo.parent), input=stdin, capture_output=True, text=True,
        check=False,
    )  # fmt: skip


def _repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "remote", "add", "origin", "https://ci-user:hunter2@git.example.com/acme/payments.git")
    return repo


def _commit(repo: Path, name: str, message: str) -> str:
    (repo / name).write_text(message + "\n")
    _git(repo, "add", name)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _git_source_key(setup: Setup, name: str) -> tuple[Path, str]:
    """`keygen --type git`, registered with the command it prints: (skey path, vkey)."""
    made = run_cli("keygen", "--source", name, "--type", "git", "--out", setup.root / "keys")
    assert made.code == 0, made.stderr
    command = next(line for line in made.stderr.splitlines() if line.startswith("sealtrail source add"))
    assert f"--type git --key {made.text.strip()} --require-signature" in command
    assert run_cli(*command.split()[1:], "--dir", setup.data).code == 0
    return setup.root / "keys" / f"{name}.skey", made.text.strip()


def test_git_hooks_emit_signed_commit_merge_and_push_events(setup: Setup) -> None:
    skey, vkey = _git_source_key(setup, "laptop")
    setup.start()
    repo = _repo(setup.root)
    installed = run_cli(
        "git", "install-hooks", "--repo", repo, "--url", setup.url, "--key", skey, "--spool", setup.spool,
        env={"SEALTRAIL_TOKEN": setup.token},
    )  # fmt: skip
    assert installed.code == 0, installed.stderr
    hooks = repo / ".git" / "hooks"
    for name in ("post-commit", "pre-push", "post-merge"):
        assert os.access(hooks / name, os.X_OK)
        assert setup.token not in (hooks / name).read_text()
    token_file = Path(_git(repo, "config", "sealtrail.tokenfile"))
    assert token_file.read_text().strip() == setup.token and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert _git(repo, "config", "sealtrail.source") == "git:laptop"

    first = _commit(repo, "a.txt", "first")
    _git(repo, "checkout", "-q", "-b", "feature")
    feature = _commit(repo, "b.txt", "feature work")
    _git(repo, "checkout", "-q", "main")
    main = _commit(repo, "c.txt", "main work")
    _git(repo, "merge", "-q", "--no-edit", "feature")
    merge = _git(repo, "rev-parse", "HEAD")
    pushed = _hook(
        repo, "pre-push", "origin", "https://ci-user:hunter2@git.example.com/acme/payments.git",
        stdin=f"refs/heads/main {merge} refs/heads/main {first}\n(delete) {ZERO} refs/heads/old {feature}\n",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr

    entries = setup.entries()
    assert [e["kind"] for e in entries] == ["code.commit"] * 3 + ["code.merge"] + ["code.push"] * 2
    for entry in entries:
        _verified(entry, vkey)
        assert entry["source"] == {"type": "git", "id": "laptop"}
        assert "hunter2" not in json.dumps(entry)  # credentials in remote URLs are dropped
        assert entry["target"]["id"] == "https://git.example.com/acme/payments.git"
    commits = entries[:3]
    assert [c["attrs"]["sha"] for c in commits] == [first, feature, main]
    assert [c["attrs"]["branch"] for c in commits] == ["main", "feature", "main"]
    assert commits[0]["actor"] == {"name": "Alice Example", "id": "alice@example.com", "type": "user"}
    assert commits[0]["attrs"]["author"] == "Alice Example <alice@example.com>"
    assert commits[1]["attrs"]["parents"] == [first] and commits[1]["attrs"]["subject"] == "feature work"
    merged = entries[3]
    assert merged["action"] == "merge" and merged["attrs"]["sha"] == merge
    assert merged["attrs"]["parents"] == [main, feature] and merged["attrs"]["strategy"] == "merge-commit"
    update, delete = entries[4:]
    assert (update["action"], update["outcome"]) == ("push", "unknown")
    assert update["attrs"]["hook"] == "pre-push"
    assert (update["attrs"]["ref"], update["attrs"]["before"], update["attrs"]["after"]) == (
        "refs/heads/main", first, merge
    )  # fmt: skip
    assert update["attrs"]["remote"] == "origin" and update["attrs"]["local_ref"] == "refs/heads/main"
    assert delete["action"] == "push.delete" and delete["attrs"]["deleted"] is True
    assert "after" not in delete["attrs"] and delete["attrs"]["before"] == feature


def test_git_hooks_never_block_git_and_spool_until_the_server_is_back(setup: Setup) -> None:
    repo = _repo(setup.root)
    installed = run_cli(
        "git", "install-hooks", "--repo", repo, "--url", setup.url, "--token", setup.token, "--key", setup.skey,
        "--source", "api:runner", "--spool", setup.spool,
    )  # fmt: skip
    assert installed.code == 0, installed.stderr
    sha = _commit(repo, "a.txt", "while the log is down")  # the commit succeeds: the hook exits 0
    pushed = _hook(repo, "pre-push", "origin", "git@git.example.com:acme/payments.git",
                   stdin=f"refs/heads/main {sha} refs/heads/main {ZERO}\n")  # fmt: skip
    assert pushed.returncode == 0 and "spooled" in pushed.stderr
    assert len(list(setup.spool.glob("*.ndjson"))) == 2

    key = setup.skey.read_bytes()
    setup.skey.unlink()  # sealtrail itself fails now: still exit 0, with a message
    broken = _hook(repo, "post-commit")
    assert broken.returncode == 0 and "sealtrail:" in broken.stderr and "not recorded" in broken.stderr
    setup.skey.write_bytes(key)

    setup.start()
    flushed = run_cli("emit", "--flush", env=setup.env())
    assert flushed.code == 0, flushed.stderr
    entries = setup.entries()
    assert [(e["kind"], e["attrs"]["sha" if e["kind"] == "code.commit" else "after"]) for e in entries] == [
        ("code.commit", sha), ("code.push", sha)
    ]  # fmt: skip
    assert entries[1]["target"]["id"] == "git@git.example.com:acme/payments.git"
    assert entries[1]["attrs"]["created"] is True and "before" not in entries[1]["attrs"]
    for entry in entries:
        _verified(entry, setup.vkey)


def test_install_hooks_refuses_a_foreign_hook_and_chains_it_with_force(setup: Setup) -> None:
    repo = _repo(setup.root)
    hooks = repo / ".git" / "hooks"
    seen = setup.root / "seen.txt"
    (hooks / "pre-push").write_text(f'#!/bin/sh\ncat > "{seen}"\necho "$1" >> "{seen}"\nexit 3\n')
    (hooks / "pre-push").chmod(0o755)
    args: list[str | Path] = [
        "git",
        "install-hooks",
        "--repo",
        repo,
        "--url",
        setup.url,
        "--key",
        setup.skey,
        "--spool",
        setup.spool,
    ]
    refused = run_cli(*args, env={"SEALTRAIL_TOKEN": setup.token})
    assert refused.code == 1 and "pre-push" in one_error_line(refused.stderr)
    assert not (hooks / "post-commit").exists() and "sealtrail" not in (hooks / "pre-push").read_text()
    forced = run_cli(*args, "--force", env={"SEALTRAIL_TOKEN": setup.token})
    assert forced.code == 0, forced.stderr
    assert (hooks / "pre-push.sealtrail-chained").exists()
    again = run_cli(*args, env={"SEALTRAIL_TOKEN": setup.token})  # re-installing over our own hooks is fine
    assert again.code == 0, again.stderr

    line = f"refs/heads/main {'1' * 40} refs/heads/main {ZERO}"
    result = _hook(repo, "pre-push", "origin", "https://git.example.com/acme/payments.git", stdin=line + "\n")
    assert result.returncode == 3  # the chained hook's verdict stands; ours adds no failure
    assert seen.read_text() == f"{line}\norigin\n"  # it got the same stdin and arguments
    [spooled] = setup.spool.glob("*.ndjson")
    event = json.loads(spooled.read_text())
    assert event["kind"] == "code.push" and event["attrs"]["after"] == "1" * 40


def test_post_receive_on_a_bare_server_repository(setup: Setup) -> None:
    skey, vkey = _git_source_key(setup, "git-server")
    setup.start()
    bare = setup.root / "payments.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], env=_git_env(setup.root), check=True)
    installed = run_cli(
        "git", "install-hooks", "--repo", bare, "--server", "--url", setup.url, "--key", skey,
        "--spool", setup.spool, env={"SEALTRAIL_TOKEN": setup.token},
    )  # fmt: skip
    assert installed.code == 0, installed.stderr
    assert sorted(p.name for p in (bare / "hooks").iterdir() if not p.name.endswith(".sample")) == ["post-receive"]
    work = setup.root / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    sha = _commit(work, "a.txt", "first")
    _git(work, "push", "-q", str(bare), "main")
    [entry] = setup.entries()
    assert (entry["kind"], entry["action"], entry["outcome"]) == ("code.push", "push", "success")
    assert entry["attrs"]["ref"] == "refs/heads/main" and entry["attrs"]["after"] == sha
    assert entry["attrs"]["created"] is True and entry["target"]["name"] == "payments"
    _verified(entry, vkey)
    assert entry["source"] == {"type": "git", "id": "git-server"}
