"""Signing at the source: `keygen`, `emit` (flags, JSON, git hooks; spools while the server is away), `git ...`.

Secrets: keygen writes the private key only to NAME.skey (mode 600, never overwritten)
and prints only the public vkey. Tokens are read from flags, the environment or a
token file, never printed, and never written into hook scripts: the hooks find their
settings in `git config sealtrail.*` (url, tokenfile, key, source, spool).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TextIO

import orjson
import typer

from ..event import SOURCE_TYPES, EventError
from ..note import Ed25519Signer, generate_ed25519, is_valid_name, parse_signer
from ._common import fail, reported_errors

__all__ = ["CLIENT_HOOKS", "HOOK_MARKER", "SERVER_HOOKS", "register"]

HOOK_MARKER = "# sealtrail hook"
"""First comment line of every hook this module writes: such a hook may be replaced."""
CLIENT_HOOKS = ("post-commit", "pre-push", "post-merge")
SERVER_HOOKS = ("post-receive",)
STDIN_HOOKS = frozenset({"pre-push", "post-receive"})
CHAINED_SUFFIX = ".sealtrail-chained"
HOOK_RETRIES = 2
HOOK_TIMEOUT = 3.0
"""Hooks try briefly, then spool: a commit or a push never waits long on the audit log."""

git_app = typer.Typer(help="Git workflows: hooks that emit signed code.commit/code.push/code.merge events.")


def _default_spool() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "sealtrail" / "spool"


def _parse_source(value: str, flag: str = "--source") -> dict[str, str]:
    source_type, _, source_id = value.partition(":")
    if source_type not in SOURCE_TYPES or not source_id:
        raise ValueError(f"{flag} must look like TYPE:ID with TYPE one of {', '.join(sorted(SOURCE_TYPES))}")
    return {"type": source_type, "id": source_id}


def _load_signer(path: Path) -> Ed25519Signer:
    """An Ed25519 signer from a .skey file (the key itself is never echoed in errors)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"--key {path}: {exc.strerror or exc}") from None
    try:
        return parse_signer(text.strip())
    except ValueError as exc:
        raise ValueError(f"--key {path}: {exc}") from None


# --- keygen -----------------------------------------------------------------------------------------


def keygen(
    source: Annotated[str, typer.Option("--source", help="The source's name: key name, file name, source.id.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for NAME.skey and NAME.vkey.")] = Path(),
    source_type: Annotated[
        str, typer.Option("--type", help="The source type to register (git for `git install-hooks`).")
    ] = "api",
) -> None:
    """Create an Ed25519 key for a source: NAME.skey (mode 600) and NAME.vkey; print the vkey.

    Existing key files are never overwritten. The command that registers the key
    with a sealtrail server is printed on stderr.
    """
    with reported_errors():
        if source_type not in SOURCE_TYPES:
            raise ValueError(f"--type must be one of {', '.join(sorted(SOURCE_TYPES))}")
        if not is_valid_name(source) or "/" in source or source.startswith("."):
            raise ValueError(f"--source {source!r}: a name without spaces, '+' or '/' (and not starting with '.')")
        out.mkdir(parents=True, exist_ok=True)
        skey_path, vkey_path = out / f"{source}.skey", out / f"{source}.vkey"
        for path in (skey_path, vkey_path):
            if path.exists():
                raise ValueError(f"{path} already exists; refusing to overwrite a key")
        signer = generate_ed25519(source)
        vkey = signer.verifier.vkey
        _write_new(skey_path, signer.skey + "\n", 0o600)
        _write_new(vkey_path, vkey + "\n", 0o644)
    print(vkey)
    print(f"wrote {skey_path} (mode 600, keep it secret) and {vkey_path}; register the key with:", file=sys.stderr)
    command = ["sealtrail", "source", "add", source, "--type", source_type, "--key", vkey, "--require-signature"]
    print(shlex.join(command), file=sys.stderr)


def _write_new(path: Path, text: str, mode: int) -> None:
    """Create `path` with `mode` (O_EXCL: an existing file is an error) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, mode)  # whatever the umask


# --- building events ----------------------------------------------------------------------------------


def _compact(value: Any) -> Any:
    """Drop None, empty strings and empty dicts (optional envelope labels must be non-empty)."""
    if isinstance(value, dict):
        out = {k: c for k, v in value.items() if (c := _compact(v)) is not None and c != "" and c != {}}
        return out
    return value


def _flag_event(
    kind: str,
    action: str | None,
    outcome: str | None,
    time: str | None,
    actor_name: str | None,
    actor_id: str | None,
    target_type: str | None,
    target_id: str | None,
    env: str | None,
    attr: list[str],
) -> dict[str, Any]:
    attrs: dict[str, str] = {}
    for item in attr:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--attr {item!r}: expected KEY=VALUE")
        if key in attrs:
            raise ValueError(f"--attr {key!r} given twice")
        attrs[key] = value
    event: dict[str, Any] = {
        "kind": kind,
        "action": action,
        "outcome": outcome,
        "time": time,
        "actor": {"name": actor_name, "id": actor_id},
        "target": {"type": target_type, "id": target_id},
        "env": env,
    }
    compacted: dict[str, Any] = _compact(event)
    if attrs:
        compacted["attrs"] = attrs
    return compacted


def _json_events(source: str) -> list[dict[str, Any]]:
    """Events from FILE or - : one JSON object, a JSON array of objects, or NDJSON."""
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    try:
        parsed: Any = orjson.loads(data)
        items = parsed if isinstance(parsed, list) else [parsed]
        where = "item"
    except orjson.JSONDecodeError:
        items = []
        where = "line"
        for number, line in enumerate(data.split(b"\n"), start=1):
            if line.strip():
                try:
                    items.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise EventError(f"--json line {number}: malformed JSON: {exc}") from None
    if not items:
        raise EventError("--json: no events")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise EventError(f"--json {where} {number}: an event must be a JSON object")
    return items


# --- git ------------------------------------------------------------------------------------------------


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    """Run git; its stdout without the final newline ('' on failure when check is False)."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RuntimeError("git is not installed") from None
    if proc.returncode != 0:
        if check:
            raise RuntimeError(f"git {' '.join(args[:2])}: {' '.join(proc.stderr.split()) or 'failed'}")
        return ""
    return proc.stdout.rstrip("\n")


def _git_config(name: str, cwd: Path | None = None) -> str | None:
    return _git("config", "--get", f"sealtrail.{name}", cwd=cwd, check=False) or None


_USERINFO = re.compile(r"^(https?://)[^/@]*@", re.IGNORECASE)
_IDENT = re.compile(r"^(.*?) <(.*)> \d+ [+-]\d{4}$")


def _safe_url(url: str) -> str:
    """A remote URL without http(s) user info (which may hold a password or token)."""
    return _USERINFO.sub(r"\1", url)


def _is_zero(sha: str) -> bool:
    return bool(sha) and set(sha) == {"0"}


def _ident() -> dict[str, str]:
    """The local git identity (committer) as an envelope actor."""
    found = _IDENT.match(_git("var", "GIT_COMMITTER_IDENT", check=False))
    if found is None:
        return {}
    return _compact({"name": found.group(1), "id": found.group(2), "type": "user"})  # type: ignore[no-any-return]


def _repository() -> tuple[dict[str, str], str | None]:
    """The target repository (remote URL when known, else its path) and the current branch."""
    branch = _git("symbolic-ref", "--short", "-q", "HEAD", check=False) or None
    top = _git("rev-parse", "--show-toplevel", check=False) or _git("rev-parse", "--absolute-git-dir")
    remote = (_git("config", "--get", f"branch.{branch}.remote", check=False) if branch else "") or "origin"
    url = _git("remote", "get-url", remote, check=False)
    name = Path(top).name.removesuffix(".git")
    target = _compact({"type": "repository", "id": _safe_url(url) if url else top, "name": name})
    return target, branch


def _head(fields: str) -> list[str]:
    return _git("log", "-1", f"--format={fields}", "HEAD").split("\x00")


def _ref_lines(stdin: TextIO, hook: str) -> list[list[str]]:
    expected = 4 if hook == "pre-push" else 3
    lines = []
    for number, line in enumerate(stdin, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != expected:
            raise EventError(f"{hook}: stdin line {number}: expected {expected} fields, got {len(parts)}")
        lines.append(parts)
    return lines


def _ref_attrs(ref: str, before: str, after: str) -> dict[str, Any]:
    created, deleted = _is_zero(before), _is_zero(after)
    attrs: dict[str, Any] = {
        "ref": ref,
        "branch": ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None,
        "tag": ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None,
        "before": None if created else before,
        "after": None if deleted else after,
        "created": created,
        "deleted": deleted,
    }
    return attrs


def _pusher() -> dict[str, str]:
    """Who pushed, as a git server tells its hooks (GitLab, Gitea, HTTP auth, or the ssh user)."""
    name = next(
        (os.environ[v] for v in ("GL_USERNAME", "GITEA_PUSHER_NAME", "REMOTE_USER", "USER") if os.environ.get(v)),
        None,
    )
    address = (os.environ.get("SSH_CONNECTION") or os.environ.get("REMOTE_ADDR") or "").split(" ")[0]
    try:
        ip = str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        ip = None
    return _compact({"name": name, "type": "user", "ip": ip})  # type: ignore[no-any-return]


def git_events(hook: str, args: list[str], stdin: TextIO) -> list[dict[str, Any]]:
    """The events a git hook records, from the repository in the working directory.

    post-commit → code.commit; post-merge → code.merge; pre-push (stdin
    `<local ref> <local sha> <remote ref> <remote sha>`) → code.push per ref, outcome
    unknown since the remote may still refuse it; post-receive (stdin
    `<old> <new> <ref>`) → code.push per ref, outcome success.
    """
    attrs: dict[str, Any]
    if hook == "post-commit":
        sha, parents, an, ae, cn, ce, committed, subject = _head("%H%x00%P%x00%an%x00%ae%x00%cn%x00%ce%x00%cI%x00%s")
        target, branch = _repository()
        attrs = {
            "sha": sha,
            "parents": parents.split(),
            "branch": branch,
            "ref": f"refs/heads/{branch}" if branch else None,
            "author": f"{an} <{ae}>",
            "committed": committed,
            "subject": subject,
            "hook": hook,
        }
        actor = _compact({"name": cn, "id": ce, "type": "user"})
        return [
            _compact(
                {
                    "kind": "code.commit",
                    "action": "commit",
                    "outcome": "success",
                    "actor": actor,
                    "target": target,
                    "attrs": attrs,
                }
            )
        ]
    if hook == "post-merge":
        squash = bool(args) and args[0] == "1"
        sha, parents_text, subject = _head("%H%x00%P%x00%s")
        parent_list = parents_text.split()
        target, branch = _repository()
        strategy = "squash" if squash else "merge-commit" if len(parent_list) > 1 else "fast-forward"
        attrs = {
            "sha": sha,
            "parents": parent_list,
            "merged": parent_list[1:] if len(parent_list) > 1 else None,
            "before": _git("rev-parse", "-q", "--verify", "ORIG_HEAD", check=False) or None,
            "branch": branch,
            "ref": f"refs/heads/{branch}" if branch else None,
            "strategy": strategy,
            "subject": subject,
            "hook": hook,
        }
        action = "merge.squash" if squash else "merge"
        return [
            _compact(
                {
                    "kind": "code.merge",
                    "action": action,
                    "outcome": "success",
                    "actor": _ident(),
                    "target": target,
                    "attrs": attrs,
                }
            )
        ]
    if hook == "pre-push":
        if len(args) < 2:
            raise EventError("pre-push: git passes the remote name and URL as arguments")
        remote, url = args[0], _safe_url(args[1])
        repository, _ = _repository()
        target = _compact({"type": "repository", "id": url or remote, "name": repository.get("name")})
        actor = _ident()
        events = []
        for local_ref, local_sha, remote_ref, remote_sha in _ref_lines(stdin, hook):
            attrs = _ref_attrs(remote_ref, remote_sha, local_sha)
            attrs.update(remote=remote, remote_url=url, local_ref=None if local_ref == "(delete)" else local_ref)
            attrs["hook"] = hook
            action = "push.delete" if attrs["deleted"] else "push"
            events.append(
                _compact(
                    {
                        "kind": "code.push",
                        "action": action,
                        "outcome": "unknown",
                        "actor": actor,
                        "target": target,
                        "attrs": attrs,
                    }
                )
            )
        return events
    if hook == "post-receive":
        git_dir = _git("rev-parse", "--absolute-git-dir")
        target = {"type": "repository", "id": git_dir, "name": Path(git_dir).name.removesuffix(".git")}
        if target["name"] == "" or git_dir.endswith("/.git"):
            target["name"] = Path(git_dir).parent.name
        actor = _pusher()
        events = []
        for before, after, ref in _ref_lines(stdin, hook):
            attrs = _ref_attrs(ref, before, after)
            attrs["hook"] = hook
            action = "push.delete" if attrs["deleted"] else "push"
            events.append(
                _compact(
                    {
                        "kind": "code.push",
                        "action": action,
                        "outcome": "success",
                        "actor": actor,
                        "target": target,
                        "attrs": attrs,
                    }
                )
            )
        return events
    raise ValueError(f"--git {hook!r}: expected one of {', '.join(CLIENT_HOOKS + SERVER_HOOKS)}")


# --- emit ------------------------------------------------------------------------------------------------


def _setting(flag: str | None, config_key: str | None, env_key: str | None) -> str | None:
    """A flag, else `git config sealtrail.KEY` (in --git mode), else the environment."""
    if flag:
        return flag
    if config_key is not None and (found := _git_config(config_key)):
        return found
    return os.environ.get(env_key) if env_key else None


def _token(token: str | None, token_file: Path | None, git_mode: bool) -> str:
    if token:
        return token.strip()
    path = token_file or (Path(found) if git_mode and (found := _git_config("tokenfile")) else None)
    if path is None and os.environ.get("SEALTRAIL_TOKEN"):
        return os.environ["SEALTRAIL_TOKEN"].strip()
    if path is None:
        raise ValueError("no token: pass --token, --token-file or set SEALTRAIL_TOKEN")
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"token file {path}: {exc.strerror or exc}") from None
    if not text:
        raise ValueError(f"token file {path} is empty")
    return text


def emit(
    args: Annotated[
        list[str] | None, typer.Argument(help="With --git: the arguments git passed to the hook.", show_default=False)
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="Server URL (default $SEALTRAIL_URL).")] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="API token with the ingest scope (default $SEALTRAIL_TOKEN).")
    ] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="A file holding the token.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Sign with this Ed25519 key (NAME.skey).")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="TYPE:ID for events that name none (default api:<key name>).")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Dotted category: deploy, ci.run, code.push...")] = None,
    action: Annotated[str | None, typer.Option("--action", help="The source's own verb.")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="success, failure or unknown.")] = None,
    time: Annotated[str | None, typer.Option("--time", help="When it happened (RFC 3339; default now).")] = None,
    actor_name: Annotated[str | None, typer.Option("--actor-name")] = None,
    actor_id: Annotated[str | None, typer.Option("--actor-id")] = None,
    target_type: Annotated[str | None, typer.Option("--target-type")] = None,
    target_id: Annotated[str | None, typer.Option("--target-id")] = None,
    env: Annotated[str | None, typer.Option("--env", help="prod, staging, ...")] = None,
    attr: Annotated[list[str] | None, typer.Option("--attr", help="KEY=VALUE for attrs (repeatable).")] = None,
    json_input: Annotated[
        str | None, typer.Option("--json", help="Events from FILE or - : a JSON object, an array, or NDJSON.")
    ] = None,
    git: Annotated[
        str | None, typer.Option("--git", help="Record the git hook HOOK (post-commit, pre-push, ...); for hooks.")
    ] = None,
    spool: Annotated[
        Path | None,
        typer.Option("--spool", help="Spool directory ($SEALTRAIL_SPOOL, default ~/.cache/sealtrail/spool)."),
    ] = None,
    flush: Annotated[bool, typer.Option("--flush", help="Only send what is spooled.")] = False,
    retries: Annotated[int, typer.Option("--retries", help="Retries before spooling.", min=0)] = 5,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per attempt.", min=0.1)] = 10.0,
) -> None:
    """Build events, sign them with --key, send them; print one receipt per line.

    While the server is unreachable the signed events are spooled (a notice on
    stderr, exit 0) and sent, exactly once, by the next emit or `emit --flush`.
    """
    from ..client import Client, ClientError

    flag_values = (action, outcome, time, actor_name, actor_id, target_type, target_id, env)
    with reported_errors():
        modes = [name for name, on in (("--json", json_input), ("--git", git), ("--flush", flush)) if on]
        if len(modes) > 1:
            raise ValueError(f"use only one of {' and '.join(modes)}")
        has_flags = kind is not None or bool(attr) or any(v is not None for v in flag_values)
        if modes and has_flags:
            raise ValueError(f"the event flags (--kind, --action, ...) cannot be combined with {modes[0]}")
        if not modes and kind is None:
            raise ValueError("--kind is required (or --json FILE, --git HOOK, --flush)")
        if args and not git:
            raise ValueError(f"unexpected argument {args[0]!r}")
        if git is not None and git not in CLIENT_HOOKS + SERVER_HOOKS:
            raise ValueError(f"--git {git!r}: expected one of {', '.join(CLIENT_HOOKS + SERVER_HOOKS)}")
        git_mode = git is not None
        url = _setting(url, "url" if git_mode else None, "SEALTRAIL_URL")
        if not url:
            raise ValueError("no server URL: pass --url or set SEALTRAIL_URL")
        secret = _token(token, token_file, git_mode)
        key_path = Path(found) if key is None and git_mode and (found := _git_config("key")) else key
        signer = _load_signer(key_path) if key_path is not None else None
        source_text = _setting(source, "source" if git_mode else None, None)
        default_source: dict[str, str] | None = None
        if source_text:
            default_source = _parse_source(source_text)
        elif signer is not None:
            default_source = {"type": "git" if git_mode else "api", "id": signer.name}
        spool_text = _setting(str(spool) if spool else None, "spool" if git_mode else None, "SEALTRAIL_SPOOL")
        spool_dir = Path(spool_text).expanduser() if spool_text else _default_spool()
        events: list[dict[str, Any]] = []
        if git is not None:
            events = git_events(git, list(args or ()), sys.stdin)
            if not events:
                return  # e.g. a push of nothing
        elif json_input is not None:
            events = _json_events(json_input)
        elif kind is not None:
            events = [_flag_event(kind, *flag_values, attr or [])]
        client = Client(
            url, secret, signer=signer, source=default_source, spool=spool_dir, timeout=timeout, retries=retries
        )
        with client:
            try:
                receipts = client.flush_receipts() if flush else client.send(events)
            except ClientError as exc:
                raise fail(f"the server refused the events ({exc})") from None
    _print_receipts(receipts)
    spooled = [r for r in receipts if r.get("spooled")]
    if spooled:
        what = "signed event(s)" if signer is not None else "event(s)"
        print(
            f"sealtrail: server unreachable; {len(spooled)} {what} spooled in {spool_dir} "
            "(sent by the next emit or `sealtrail emit --flush`)",
            file=sys.stderr,
        )
    elif flush:
        print(f"sealtrail: delivered {len(receipts)} spooled event(s)", file=sys.stderr)


def _print_receipts(receipts: Sequence[Mapping[str, Any]]) -> None:
    out = sys.stdout.buffer
    for receipt in receipts:
        out.write(orjson.dumps(receipt) + b"\n")
    out.flush()


# --- git install-hooks -------------------------------------------------------------------------------------


def _hook_script(hook: str) -> str:
    """A POSIX sh hook: runs a chained hook first (keeping its status), then `sealtrail emit --git`, never failing."""
    command = (
        f"{shlex.quote(sys.executable)} -m sealtrail emit --git {hook} "
        f'--retries {HOOK_RETRIES} --timeout {HOOK_TIMEOUT:g} -- "$@" >/dev/null'
    )
    if hook in STDIN_HOOKS:
        read = 'input=$(cat)\nfeed() { [ -z "$input" ] || printf \'%s\\n\' "$input"; }\n'
        chained_call = 'feed | "$chained" "$@"'
        emit_call = f"feed | {command}"
    else:
        read = "feed() { :; }\n"
        chained_call = '"$chained" "$@"'
        emit_call = command
    return (
        "#!/bin/sh\n"
        f"{HOOK_MARKER}: records a signed event for every {hook} (installed by `sealtrail git install-hooks`).\n"
        "# Settings come from `git config sealtrail.*` (url, tokenfile, key, source, spool): no secret is kept here.\n"
        "# It never blocks git: a failure is reported on stderr and the hook exits 0\n"
        f"# (or with the status of {hook}{CHAINED_SUFFIX}, the hook that was here before, which runs first).\n"
        f"{read}"
        f'chained="$(dirname "$0")/{hook}{CHAINED_SUFFIX}"\n'
        "status=0\n"
        'if [ -x "$chained" ]; then\n'
        f"    {chained_call}\n"
        "    status=$?\n"
        "fi\n"
        f'{emit_call} || echo "sealtrail: the {hook} event was not recorded (see above); git goes on" >&2\n'
        "exit $status\n"
    )


def _is_ours(path: Path) -> bool:
    try:
        return HOOK_MARKER in path.read_text(errors="replace").split("\n", 2)[1]
    except (OSError, IndexError):
        return False


def _write_replace(path: Path, text: str, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.sealtrail-tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


@git_app.command("install-hooks")
def install_hooks(
    repo: Annotated[Path, typer.Option("--repo", help="The repository (default: the current directory).")] = Path(),
    server: Annotated[bool, typer.Option("--server", help="A bare server repository: install post-receive.")] = False,
    url: Annotated[str | None, typer.Option("--url", help="Server URL (default $SEALTRAIL_URL).")] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="Ingest token ($SEALTRAIL_TOKEN); kept in <git dir>/sealtrail/token.")
    ] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Use this token file instead.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Sign events with this Ed25519 key (NAME.skey).")] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="TYPE:ID of the events (default git:<key name>: `keygen --type git`)."),
    ] = None,
    spool: Annotated[Path | None, typer.Option("--spool", help="Spool directory for the hooks.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Keep an existing hook by chaining it (renamed NAME.sealtrail-chained).")
    ] = False,
) -> None:
    """Install hooks that emit signed events: post-commit, pre-push, post-merge (--server: post-receive).

    Settings go to `git config sealtrail.*`; the token, if given, to a mode-600 file
    beside the repository's git data. An existing hook that is not sealtrail's is
    refused, or with --force kept and run first.
    """
    with reported_errors():
        repo = repo.resolve()
        git_dir = Path(_git("rev-parse", "--absolute-git-dir", cwd=repo))
        hooks_dir = Path(_git("rev-parse", "--git-path", "hooks", cwd=repo))
        hooks_dir = hooks_dir if hooks_dir.is_absolute() else repo / hooks_dir
        url = url or os.environ.get("SEALTRAIL_URL") or _git_config("url", repo)
        if not url:
            raise ValueError("no server URL: pass --url or set SEALTRAIL_URL")
        token_text = token or os.environ.get("SEALTRAIL_TOKEN")
        token_path: Path | None = token_file.resolve() if token_file is not None else None
        if token_path is not None and not token_path.is_file():
            raise ValueError(f"--token-file {token_file}: no such file")
        if token_path is None and not token_text:
            existing = _git_config("tokenfile", repo)
            if existing is None:
                raise ValueError("no token: pass --token, --token-file or set SEALTRAIL_TOKEN")
            token_path = Path(existing)
        key_path = key.resolve() if key is not None else None
        signer = _load_signer(key_path) if key_path is not None else None
        source_text = source or _git_config("source", repo) or (f"git:{signer.name}" if signer else None)
        if not source_text:
            raise ValueError("--source TYPE:ID is required without --key")
        _parse_source(source_text)
        hooks = SERVER_HOOKS if server else CLIENT_HOOKS
        foreign = [hooks_dir / h for h in hooks if (hooks_dir / h).exists() and not _is_ours(hooks_dir / h)]
        if foreign and not force:
            names = ", ".join(str(p) for p in foreign)
            raise ValueError(f"{names}: not a sealtrail hook; refusing to replace it (--force keeps it, chained)")
        for path in foreign:
            chained = path.with_name(path.name + CHAINED_SUFFIX)
            if chained.exists():
                raise ValueError(f"{chained} exists already; move one of the two hooks away first")

        if token_path is None:
            assert token_text is not None
            secret_dir = git_dir / "sealtrail"
            secret_dir.mkdir(mode=0o700, exist_ok=True)
            token_path = secret_dir / "token"
            _write_replace(token_path, token_text.strip() + "\n", 0o600)
        settings = {"url": url, "tokenfile": str(token_path), "source": source_text}
        if key_path is not None:
            settings["key"] = str(key_path)
        if spool is not None:
            settings["spool"] = str(spool.expanduser().resolve())
        for name, value in settings.items():
            _git("config", f"sealtrail.{name}", value, cwd=repo)
        hooks_dir.mkdir(parents=True, exist_ok=True)
        for path in foreign:
            path.rename(path.with_name(path.name + CHAINED_SUFFIX))
        for hook in hooks:
            _write_replace(hooks_dir / hook, _hook_script(hook), 0o755)
    chained_note = f" (kept and chained: {', '.join(p.name for p in foreign)})" if foreign else ""
    print(
        f"installed {', '.join(hooks)} in {hooks_dir}{chained_note}; settings in git config sealtrail.*",
        file=sys.stderr,
    )


def register(app: typer.Typer) -> None:
    app.command()(keygen)
    app.command()(emit)
    app.add_typer(git_app, name="git")
