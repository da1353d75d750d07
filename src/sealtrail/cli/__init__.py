"""The `sealtrail` command line (Typer). One module per command group."""

from __future__ import annotations

import typer

from . import (
    alert_cmds,
    archive_cmds,
    client_cmds,
    evidence_cmds,
    follow_cmds,
    forward_cmds,
    log_cmds,
    report_cmds,
    retention_cmds,
    search_cmds,
    server_cmds,
    tiles_cmds,
    timestamp_cmds,
    verify_cmds,
    witness_cmds,
)

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
app.add_typer(evidence_cmds.app, name="evidence")
report_cmds.register(app)
app.add_typer(witness_cmds.app, name="witness")
archive_cmds.register(app)
follow_cmds.register(app)
forward_cmds.register(app)
retention_cmds.register(app)
search_cmds.register(app)
app.add_typer(alert_cmds.app, name="alerts")
app.add_typer(timestamp_cmds.app, name="timestamp")


def main() -> None:
    app()
