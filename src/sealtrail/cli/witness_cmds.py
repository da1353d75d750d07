"""`sealtrail witness ...`: run a c2sp.org/tlog-witness witness that cosigns other logs' checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..note import b64encode
from ..witness.directory import WitnessDir
from ._common import key_argument, reported_errors

__all__ = ["app"]

app = typer.Typer(
    help="A C2SP tlog-witness: cosign checkpoints of the logs you witness, never two inconsistent ones.",
    no_args_is_help=True,
)

WitnessDirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        "-d",
        help="Witness directory (default: $SEALTRAIL_WITNESS_DIR or ./sealtrail-witness).",
        show_default=False,
    ),
]


@app.command()
def init(
    name: Annotated[str, typer.Option("--name", help="The witness's key name, e.g. witness.example.com/w1.")],
    dir: WitnessDirOption = None,
) -> None:
    """Create a witness: its Ed25519 key (mode 600) and state; print the cosignature vkey to publish."""
    with reported_errors():
        directory = WitnessDir.resolve(dir)
        verifier = directory.init(name)
    print(verifier.vkey)
    print(f"created witness {name} in {directory.path} (key: {directory.skey}, mode 600)", file=sys.stderr)


@app.command("add-log")
def add_log(
    origin: Annotated[str, typer.Argument(help="The log's origin: the first line of its checkpoints.")],
    vkey: Annotated[str, typer.Argument(help="The log's Ed25519 verifier key (name+id+key), or a file holding it.")],
    dir: WitnessDirOption = None,
) -> None:
    """Witness a log: trust VKEY for checkpoints of ORIGIN (repeat to add a second key). Safe while serving."""
    with reported_errors():
        verifier = key_argument(vkey)
        state = WitnessDir.resolve(dir).state()
        try:
            new = state.add_log(origin, verifier.vkey)
        finally:
            state.close()
    what = "now witnessing" if new else "added a key to"
    print(f"{what} {origin} (key {verifier.name}+{verifier.key_id:08x})", file=sys.stderr)
    if verifier.name != origin:
        print(f"warning: the key is named {verifier.name!r}, not after the origin {origin!r}", file=sys.stderr)


@app.command()
def pubkey(dir: WitnessDirOption = None) -> None:
    """Print the witness's cosignature/v1 verifier key, for logs' and clients' configuration."""
    with reported_errors():
        verifier = WitnessDir.resolve(dir).verifier()
    print(verifier.vkey)


@app.command()
def logs(dir: WitnessDirOption = None) -> None:
    """List the witnessed logs: origin, latest cosigned size and root hash, keys."""
    with reported_errors():
        state = WitnessDir.resolve(dir).state()
        try:
            states = state.logs()
        finally:
            state.close()
    for log in states:
        print(f"{log.origin}  size={log.size}  root={b64encode(log.root)}  keys={','.join(log.keys)}")


@app.command()
def serve(
    dir: WitnessDirOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7380,
) -> None:
    """Serve POST /add-checkpoint (c2sp.org/tlog-witness), GET /vkey and GET /logs."""
    import uvicorn

    from ..witness.server import create_witness_app
    from ..witness.service import Witness

    with reported_errors():
        directory = WitnessDir.resolve(dir)
        signer = directory.signer()
        witness = Witness(directory.state(), signer)
        app_ = create_witness_app(witness)
    print(f"witness {signer.name}: {witness.verifier.vkey}", file=sys.stderr)
    uvicorn.run(app_, host=host, port=port, log_level="info", access_log=False, timeout_graceful_shutdown=10)
