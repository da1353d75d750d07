"""`sealtrail archive`: publish the log to a write-once S3 archive (Object Lock, COMPLIANCE mode)."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from ..publish import Publisher
from ._common import DirOption, data_dir, fail, progress_bar, reported_errors

__all__ = ["register"]


def archive(
    url: Annotated[str, typer.Argument(help="Where to publish: s3://bucket/prefix (the bucket needs Object Lock).")],
    dir: DirOption = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--retention-days",
            min=1,
            max=36500,
            help="Days each archived object stays locked in COMPLIANCE mode; never shortened (default 365).",
            show_default=False,
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url", help="S3 endpoint (default: $AWS_ENDPOINT_URL, else AWS S3).", show_default=False
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep running: publish each new checkpoint (stop with Ctrl-C).")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="With --follow: seconds between checks for new checkpoints.")
    ] = 10.0,
    create_bucket: Annotated[
        bool, typer.Option("--create-bucket", help="Create the bucket, with Object Lock enabled, if it does not exist.")
    ] = False,
    allow_no_lock: Annotated[
        bool,
        typer.Option("--allow-no-lock", help="Also publish to a bucket without Object Lock (then it is not WORM)."),
    ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Concurrent uploads.")] = 8,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Check every object of the archive, not only new ones: put back missing ones (e.g. hidden "
            "behind a delete marker), refuse changed ones.",
        ),
    ] = False,
) -> None:
    """Publish checkpoint, tiles and entry bundles as c2sp.org/tlog-tiles to S3, each object locked
    (COMPLIANCE) for --retention-days; only what is new since the last run is uploaded.
    Credentials and region come from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)."""
    with reported_errors():
        from ..s3 import DEFAULT_RETENTION_DAYS, S3Sink  # boto3 is imported only when archiving

        store = data_dir(dir).store()
        try:
            sink = S3Sink(
                url,
                endpoint_url=endpoint_url,
                retention_days=retention_days or DEFAULT_RETENTION_DAYS,
                allow_no_lock=allow_no_lock,
            )
        except BaseException:
            store.close()
            raise
        try:
            if create_bucket and sink.create_bucket():
                print(f"created bucket {sink.location.bucket} with Object Lock enabled", file=sys.stderr)
            if not sink.check_bucket():
                print(
                    f"warning: bucket {sink.location.bucket} has no Object Lock; archiving without it "
                    "(--allow-no-lock): the archive is NOT write-once",
                    file=sys.stderr,
                )
            publisher = Publisher(store, sink, checkpoint_history=True, workers=workers)
            _run(publisher, sink.describe(), follow, interval, full)
        finally:
            sink.close()
            store.close()


def _run(publisher: Publisher, where: str, follow: bool, interval: float, full: bool) -> None:
    """One round, or with `follow` a round every `interval` seconds until Ctrl-C; a failed round is reported
    and, with `follow`, retried from the last checkpoint that was fully published."""
    try:
        while True:
            try:
                plan = publisher.plan(full=full)
                if plan.up_to_date:
                    if not follow:
                        print(f"{where} is up to date at size {plan.size}")
                else:
                    with progress_bar("archiving", plan.total) as progress:
                        result = publisher.execute(plan, progress)
                    print(
                        f"archived size {result.size} to {where}: objects written {result.written}, "
                        f"already there {result.present}",
                        flush=True,
                    )
                    if result.redacted:
                        print(
                            f"note: {len(result.redacted)} entry bundles span redacted entries and were archived "
                            f"in redacted form under redacted/, e.g. {result.redacted[0]}",
                            file=sys.stderr,
                        )
            except (OSError, RuntimeError, ValueError) as exc:
                if not follow:
                    raise
                fail(str(exc))
            if not follow:
                return
            full = False
            time.sleep(interval)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command()(archive)
