"""The `sealtrail` command line (Typer). One module per command group."""

from __future__ import annotations

import typer

from . import client_cmds, log_cmds, server_cmds, tiles_cmds, verify_cmds

__all__ = ["app", "main"]

app = typer.Typer(
    name="sealtrail",
    help="Immutable, verifiable audit log: RFC 6962 Merkle tree, signed C2SP checkpoints, offline proofs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log_cmds.register(app)
verify_cmds.register(app)
app.add_typer(tiles_cmds.app, name="tiles")
server_cmds.register(app)
client_cmds.register(app)


def main() -> None:
    app()
