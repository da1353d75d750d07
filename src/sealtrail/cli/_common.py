"""Shared CLI plumbing: the --dir option, key arguments, one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ..datadir import DataDir
from ..mldsa import MLDSAVerifier, parse_mldsa_verifier
from ..note import Ed25519Verifier, NoteError, parse_verifier

__all__ = [
    "DirOption",
    "ProgressBar",
    "data_dir",
    "fail",
    "key_argument",
    "key_text",
    "mldsa_key_argument",
    "progress_bar",
    "reported_errors",
    "stderr",
]

stderr = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        "-d",
        help="Log data directory (default: $SEALTRAIL_DIR or ./sealtrail-data).",
        show_default=False,
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on one line to stderr and return the exit to raise."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn expected failures (bad input, missing log, bad proof) into one line and exit 1."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except (ValueError, RuntimeError, OSError, LookupError) as exc:
        raise fail(str(exc) or type(exc).__name__) from None


def data_dir(path: Path | None) -> DataDir:
    return DataDir.resolve(path)


def key_text(value: str) -> str:
    """The text of a vkey given inline (name+id+key) or as the path of a file holding one."""
    if "+" in value:
        return value.strip()
    path = Path(value)
    if not path.is_file():
        raise NoteError(f"{value!r} is neither a vkey nor a file")
    return path.read_text().strip()


def key_argument(value: str) -> Ed25519Verifier:
    """The Ed25519 log key of a --vkey option (see key_text)."""
    return parse_verifier(key_text(value))


def mldsa_key_argument(value: str) -> MLDSAVerifier:
    """The ML-DSA-44 log key of an --mldsa-vkey option (see key_text)."""
    return parse_mldsa_verifier(key_text(value))


class ProgressBar:
    """A progress callback taking the count done so far; `set_total` gives the total once it is known."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def __call__(self, done: int) -> None:
        self._progress.update(self._task, completed=done)

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[ProgressBar]:
    """A Rich progress bar on stderr (shown on a terminal only); None: the total is not known yet."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    task = progress.add_task(description, total=total)
    with progress:
        yield ProgressBar(progress, task)
