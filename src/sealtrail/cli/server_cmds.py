"""`sealtrail serve`, and the tokens and sources it accepts (`token ...`, `source ...`)."""

from __future__ import annotations

import secrets
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..credentials import SCOPES, Credentials
from ._common import DirOption, data_dir, reported_errors

__all__ = ["register"]

token_app = typer.Typer(help="API tokens: create (printed once, stored hashed), list, revoke.", no_args_is_help=True)
source_app = typer.Typer(
    help="Sources: the tools allowed to send events, their secrets and keys.", no_args_is_help=True
)


def serve(
    dir: DirOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    config: Annotated[Path | None, typer.Option(help="sealtrail.toml with a [server] table.")] = None,
    origin: Annotated[str | None, typer.Option(help="Origin of a new log (first run only).")] = None,
    syslog: Annotated[
        list[str] | None, typer.Option(help="Syslog listener, e.g. tcp://127.0.0.1:6514 (repeatable).")
    ] = None,
) -> None:
    """Run the HTTP API. The first run creates the log and an admin token, printed once."""
    import uvicorn

    from ..server import create_app, load_settings

    with reported_errors():
        settings = load_settings(config, host=host, port=port, syslog=tuple(syslog) if syslog else None)
        directory = data_dir(dir)
        if not directory.db.exists():
            signer = directory.init(origin or f"{socket.gethostname()}/sealtrail")
            with directory.open_log():
                pass
            secret, _ = Credentials(directory.credentials).create_token("admin", {"admin"})
            print(f"created log {signer.name} in {directory.path}; vkey: {signer.verifier.vkey}", file=sys.stderr)
            print(f"admin token (shown once, stored hashed): {secret}", file=sys.stderr)
        else:
            Credentials(directory.credentials)
        app = create_app(directory, settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=settings.access_log,
        timeout_graceful_shutdown=30,
    )


@token_app.command("create")
def token_create(
    scope: Annotated[list[str], typer.Option("--scope", help=f"One of {', '.join(sorted(SCOPES))}; repeatable.")],
    source: Annotated[list[str] | None, typer.Option("--source", help="Limit ingest to this source.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label to recognise the token by.")] = None,
    dir: DirOption = None,
) -> None:
    """Create a token and print it alone on stdout (it is shown only this once)."""
    with reported_errors():
        directory = data_dir(dir)
        directory.store().close()  # the log must exist
        secret, token = Credentials(directory.credentials).create_token(name or "", set(scope), set(source or ()))
    print(secret)
    print(f"token {token.id} ({token.name}): scopes {', '.join(sorted(token.scopes))}", file=sys.stderr)


@token_app.command("list")
def token_list(dir: DirOption = None) -> None:
    """List tokens: id, name, scopes, sources, created, revoked (never the secrets)."""
    with reported_errors():
        tokens = Credentials(data_dir(dir).credentials).tokens()
    for token in tokens:
        sources = ",".join(sorted(token.sources)) or "-"
        state = f"revoked {token.revoked}" if token.revoked else "live"
        print(
            f"{token.id}  {token.name}  {','.join(sorted(token.scopes))}  sources={sources}  {token.created}  {state}"
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token id (see `token list`).")], dir: DirOption = None
) -> None:
    """Revoke a token (running servers notice within seconds)."""
    with reported_errors():
        Credentials(data_dir(dir).credentials).revoke(token_id)
    print(f"revoked {token_id}", file=sys.stderr)


@source_app.command("add")
def source_add(
    name: Annotated[str, typer.Argument(help="The source's name: its URL path segment and source.id.")],
    type: Annotated[str, typer.Option("--type", help="github, gitlab, kubernetes, jenkins, hec, syslog, api, ...")],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", help="Webhook secret or password; generated and printed if omitted (github, gitlab, jenkins)."
        ),
    ] = None,
    key: Annotated[list[str] | None, typer.Option("--key", help="vkey of a key that signs at the source.")] = None,
    require_signature: Annotated[bool, typer.Option("--require-signature", help="Refuse unsigned events.")] = False,
    dir: DirOption = None,
) -> None:
    """Register a source (the command works on the data directory, server running or not)."""
    generated = secret is None and type in ("github", "gitlab", "jenkins")
    with reported_errors():
        directory = data_dir(dir)
        directory.store().close()
        credentials = Credentials(directory.credentials)
        source = credentials.add_source(
            name,
            type,
            secret=secrets.token_urlsafe(32) if generated else secret,
            keys=tuple(key or ()),
            require_signature=require_signature,
        )
    if generated:
        print(source.secret)
        print(f"source {name} ({type}) added; its webhook secret is above (shown once)", file=sys.stderr)
    else:
        print(f"source {name} ({type}) added", file=sys.stderr)


@source_app.command("list")
def source_list(dir: DirOption = None) -> None:
    """List sources: name, type, whether a secret is set, keys, signature policy."""
    with reported_errors():
        sources = Credentials(data_dir(dir).credentials).sources()
    for source in sources:
        policy = "signatures required" if source.require_signature else "signatures optional"
        secret = "set" if source.secret else "none"
        print(f"{source.name}  {source.type}  secret={secret}  keys={len(source.keys)}  {policy}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(token_app, name="token")
    app.add_typer(source_app, name="source")
