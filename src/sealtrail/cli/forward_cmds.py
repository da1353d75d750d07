"""`sealtrail forward`: run the [[forward]] SIEM forwarders of sealtrail.toml outside the server."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ..exporters.config import ForwardConfig, load_forward_configs
from ._common import DirOption, data_dir, fail, reported_errors

__all__ = ["register"]


def _configs(config: Path, names: list[str] | None) -> list[ForwardConfig]:
    if not config.is_file():
        raise ValueError(f"no configuration file at {config}; pass --config sealtrail.toml")
    configs = list(load_forward_configs(config))
    if not configs:
        raise ValueError(f"{config} has no [[forward]] table")
    if names:
        unknown = sorted(set(names) - {c.name for c in configs})
        if unknown:
            raise ValueError(f"{config} has no forwarder named {unknown[0]!r}")
        configs = [c for c in configs if c.name in names]
    return configs


def forward(
    dir: DirOption = None,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="sealtrail.toml with the forwarders (its forward tables).")
    ] = Path("sealtrail.toml"),
    name: Annotated[
        list[str] | None, typer.Option("--name", "-n", help="Run only this forwarder (repeatable; default: all).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Forward what the log holds now, then exit (1 if a sink keeps failing).")
    ] = False,
    status: Annotated[bool, typer.Option("--status", help="Print each forwarder's cursor and lag, then exit.")] = False,
    max_failures: Annotated[
        int, typer.Option("--max-failures", help="With --once: give up after this many failures in a row.", min=1)
    ] = 8,
) -> None:
    """Send the log to SIEMs (Elasticsearch/OpenSearch, Splunk HEC, syslog+CEF, OCSF), resuming from each cursor.

    Delivery is at least once: a cursor moves only after the SIEM acknowledged the batch.
    Stop with Ctrl-C or SIGTERM; the next run resumes where this one stopped.
    """
    from ..exporters.cursor import CursorStore
    from ..exporters.forwarder import ForwarderGroup, cursor_path

    with reported_errors():
        directory = data_dir(dir)
        store = directory.store()
        try:
            size = store.size()
        finally:
            store.close()
        configs = _configs(config, name)
        if status:
            cursors = CursorStore(cursor_path(directory.path))
            known = cursors.all()
            for item in configs:
                cursor = known.get(item.name)
                shown = "never ran" if cursor is None else f"cursor {cursor}  lag {max(0, size - cursor)}"
                dead = cursors.dead_letter_count(item.name)
                print(f"{item.name}  {item.type}  tree size {size}  {shown}  dead letters {dead}")
            return
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        group = ForwarderGroup(directory.path, configs)
        group.start(until_end=once, max_failures=max_failures if once else None)

    def _stop(signum: int, frame: FrameType | None) -> None:
        group.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not group.wait(0.5):
        pass
    failed = [s for s in group.statuses() if group.results.get(s.name) is False]
    for state in group.statuses():
        print(f"{state.name}: cursor {state.cursor} of {state.tree_size}, lag {state.lag}", file=sys.stderr)
    if failed:
        raise fail(f"forwarder {failed[0].name}: {failed[0].last_error}")


def register(app: typer.Typer) -> None:
    app.command()(forward)
