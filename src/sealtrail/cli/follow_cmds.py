"""`sealtrail mirror` and `sealtrail monitor`: follow any c2sp.org/tlog-tiles log and raise the alarm.

Exit codes: 0 the log is intact (or the follower was stopped), 1 an error
(bad arguments, source unreachable with --once), 2 an alarm (rollback, bad
signature, tiles that do not match the checkpoint), 3 a fork.
"""

from __future__ import annotations

import json
import logging
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit, urlunsplit

import typer

from ..fetch import open_source
from ..follow import Kind, Observation
from ..note import NoteError, parse_signer
from ..objectstore import DirectorySink, TileSink
from ._common import fail, key_argument, reported_errors

if TYPE_CHECKING:
    from ..mirror import Mirror

__all__ = ["register"]

EXIT_ALARM = 2
EXIT_FORK = 3

log = logging.getLogger("sealtrail")

VkeyOption = Annotated[str, typer.Option("--vkey", help="The log's verifier key, inline or as a file path.")]
OriginOption = Annotated[str | None, typer.Option("--origin", help="Log origin (default: the vkey's name).")]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="SEALTRAIL_TOKEN", help="Read token for a private sealtrail server.")
]
EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="S3 endpoint for s3:// locations (default: $AWS_ENDPOINT_URL, else AWS)."),
]
OnceOption = Annotated[bool, typer.Option("--once", help="Poll once, report, and exit with the outcome's code.")]
SourceArgument = Annotated[
    str, typer.Argument(help="URL prefix of the tiles log (http(s)://, s3://) or a directory holding one.")
]


def _exit_code(observation: Observation) -> int:
    if observation.kind is Kind.OK:
        return 0
    if observation.kind is Kind.FORK:
        return EXIT_FORK
    return EXIT_ALARM if observation.alarm else 1


def _public(url: str) -> str:
    """The source URL for logs and metrics, without any user:password@."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return url


def _report(observation: Observation, evidence_at: str | None = None) -> None:
    """One line on stdout: the outcome and its message."""
    line = f"{observation.kind.value}: {observation.message}"
    if evidence_at:
        line += f"; evidence in {evidence_at}"
    print(line, flush=True)


def _logging(once: bool) -> None:
    """--once: just the result line; following: timestamped log lines on stderr."""
    if once:
        log.addHandler(logging.NullHandler())
        log.propagate = False
    else:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so a follower finishes its poll and exits cleanly."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _open_sink(to: str, endpoint_url: str | None, allow_no_lock: bool) -> TileSink:
    if to.startswith("s3://"):
        from ..s3 import S3Sink  # boto3 is imported only for s3:// copies

        return S3Sink(to, endpoint_url=endpoint_url, allow_no_lock=allow_no_lock)
    if "://" in to:
        raise ValueError(f"--to {to!r}: give a directory or an s3://bucket/prefix")
    return DirectorySink(Path(to))


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--serve {value!r}: give HOST:PORT, e.g. 127.0.0.1:8090")
    return host.strip("[]") or "127.0.0.1", int(port)


def mirror(
    source: SourceArgument,
    vkey: VkeyOption,
    to: Annotated[str, typer.Option("--to", help="Where to keep the copy: a directory or s3://bucket/prefix.")],
    origin: OriginOption = None,
    token: TokenOption = None,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between polls.")] = 10.0,
    once: OnceOption = False,
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="Also serve the copy as a tiles log at HOST:PORT, with /status and /metrics.",
            metavar="HOST:PORT",
        ),
    ] = None,
    witness_key: Annotated[
        Path | None,
        typer.Option(
            "--witness-key",
            help="Ed25519 signed-note private key file (PRIVATE+KEY+...): cosign the copy's checkpoint "
            "(cosignature/v1) and, with --serve, answer POST /add-checkpoint for checkpoints it has mirrored.",
        ),
    ] = None,
    archive_checkpoints: Annotated[
        bool, typer.Option("--archive-checkpoints", help="Also keep every mirrored checkpoint as checkpoint.<size>.")
    ] = False,
    endpoint_url: EndpointOption = None,
    allow_no_lock: Annotated[
        bool, typer.Option("--allow-no-lock", help="Allow an s3:// copy in a bucket without Object Lock.")
    ] = False,
) -> None:
    """Keep a complete, verified copy of a tiles log: each new checkpoint's signature and its consistency with
    the copy are checked before anything is stored. On a fork the mirror keeps both signed checkpoints in
    fork-evidence/ in the copy, stops, and exits 3 (and will not start again until that directory is moved away)."""
    from ..mirror import Mirror, follow

    with reported_errors():
        verifier = key_argument(vkey)
        witness = None
        if witness_key is not None:
            mode = stat.S_IMODE(witness_key.stat().st_mode)
            if mode & 0o077:
                raise ValueError(f"{witness_key} is readable by others (mode {mode:o}); run: chmod 600 {witness_key}")
            try:
                witness = parse_signer(witness_key.read_text())
            except NoteError as exc:
                raise NoteError(f"--witness-key {witness_key}: {exc}") from None
        address = _host_port(serve) if serve else None
        if once and address:
            raise ValueError("--once and --serve do not go together")
        sink = _open_sink(to, endpoint_url, allow_no_lock)
        tiles = open_source(source, token, endpoint_url)
        try:
            follower = Mirror(
                tiles,
                sink,
                origin or verifier.name,
                verifier,
                witness=witness,
                archive_checkpoints=archive_checkpoints,
                source_name=_public(source),
            )
        except BaseException:
            tiles.close()
            raise
    _logging(once)
    try:
        if once:
            observation = follower.poll()
            _report(observation)
            raise typer.Exit(_exit_code(observation))
        if address is None:
            with _stop_on_signals() as stop:
                follow(follower, interval, stop)
        else:
            with _stop_on_signals():  # uvicorn re-raises the signal that stopped it: end here, with our exit code
                _serve(follower, sink, address, interval)
    finally:
        follower.close()
        tiles.close()
        close_sink = getattr(sink, "close", None)  # an S3 sink holds a client
        if callable(close_sink):
            close_sink()
    if follower.stopped:
        print(f"fork: {follower.status.last_message}", flush=True)
        raise typer.Exit(EXIT_FORK)


def _serve(follower: Mirror, sink: TileSink, address: tuple[str, int], interval: float) -> None:
    import uvicorn

    from ..mirror import follow
    from ..mirror_app import create_mirror_app

    app = create_mirror_app(
        sink, follower.status, mirror=follower, follower=lambda stop: follow(follower, interval, stop)
    )
    uvicorn.run(app, host=address[0], port=address[1], log_level="info", timeout_graceful_shutdown=10)


def monitor(
    source: SourceArgument,
    vkey: VkeyOption,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="JSON file keeping the last verified checkpoint (as `tiles verify --state`)."),
    ] = None,
    origin: OriginOption = None,
    token: TokenOption = None,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between polls.")] = 60.0,
    once: OnceOption = False,
    evidence_dir: Annotated[
        Path | None,
        typer.Option("--evidence-dir", help="Where to write both signed checkpoints and evidence.json on an alarm."),
    ] = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Watch a tiles log: on each poll verify the checkpoint's signature and prove it consistent with the last
    verified one (from a few hash tiles). Exits 3 on a fork, 2 on a rollback or a bad signature."""
    from ..monitor import Monitor

    with reported_errors():
        verifier = key_argument(vkey)
        tiles = open_source(source, token, endpoint_url)
        try:
            watcher = Monitor(tiles, origin or verifier.name, verifier, state, source_name=_public(source))
        except BaseException:
            tiles.close()
            raise
    _logging(once)
    code = 0
    try:
        with _stop_on_signals() as stop:
            while not stop.is_set():
                observation = watcher.poll()
                if once or observation.alarm or observation.changed:
                    _report(observation, _write_evidence(observation, evidence_dir))
                    if observation.evidence is not None and evidence_dir is None:
                        print(json.dumps(observation.evidence.to_json(), indent=2), flush=True)
                if observation.alarm or once:
                    code = _exit_code(observation)
                    break
                stop.wait(interval)
    finally:
        watcher.close()
    if code:
        raise typer.Exit(code)


def _write_evidence(observation: Observation, directory: Path | None) -> str | None:
    """Both signed checkpoints and evidence.json in a new subdirectory of `directory`; where, or None."""
    evidence = observation.evidence
    if evidence is None or directory is None:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(evidence.detected_at))
    target = directory / f"{evidence.kind.value}-{stamp}-{evidence.trusted.size}-{evidence.conflicting.size}"
    try:
        sink = DirectorySink(target)
        for name, data in evidence.files().items():
            sink.put_once(name, data)
    except OSError as exc:
        raise fail(f"could not write the evidence to {target}: {exc}", _exit_code(observation)) from None
    return str(target)


def register(app: typer.Typer) -> None:
    app.command("mirror")(mirror)
    app.command("monitor")(monitor)
