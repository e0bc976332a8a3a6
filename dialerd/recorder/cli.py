"""``dialerd recordings list|get|prune`` (R-LOG-6).

``get`` copies a recording out (checking its sha256 against the store) and sets its
downloaded flag; ``prune`` applies the retention policy (``recordings.retention_days`` of
inbound.yaml, or ``--older-than-days``). Paths in the store are relative to
``recordings.directory``. Exit codes: 0 ok, 1 failure, 2 bad input.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from dialerd.calllog.cli import calllog_db
from dialerd.config.cli import EXIT_BAD_INPUT, EXIT_FAILURE, config_option, db_option, run_or_exit
from dialerd.config.inbound import load_inbound
from dialerd.config.loader import ConfigError
from dialerd.store.calllog import CallLogStore, RecordingRow

__all__ = ["recordings"]


def _directory(config_dir: Path, err: Console) -> tuple[Path, int | None]:
    """The recordings directory (relative to the config dir) and the retention days."""
    try:
        config = load_inbound(config_dir).recordings
    except ConfigError as exc:
        for issue in exc.issues:
            err.print(str(issue), markup=False, highlight=False)
        raise SystemExit(EXIT_BAD_INPUT) from None
    return config_dir / config.directory, config.retention_days


@click.group("recordings")
def recordings() -> None:
    """Call recordings: list, fetch (sets the downloaded flag), prune."""


@recordings.command("list")
@config_option
@db_option
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=1000)
def recordings_list(config_dir: Path, db_path: Path | None, limit: int) -> None:
    """Recordings, newest first."""
    err = Console(stderr=True)
    db = calllog_db(config_dir, db_path, err)

    async def work() -> list[RecordingRow]:
        store = await CallLogStore.open(db)
        try:
            return await store.list_recordings(limit=limit)
        finally:
            await store.close()

    table = Table("id", "call", "started (UTC)", "length", "size", "agent", "downloaded", "path")
    for r in run_or_exit(work(), err):
        table.add_row(
            str(r.id), str(r.call_id),
            dt.datetime.fromtimestamp(r.started_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            f"{r.duration_seconds:.1f}s" if r.duration_seconds is not None else "",
            str(r.size_bytes or ""), r.agent or "", "yes" if r.downloaded else "no", r.path,
        )  # fmt: skip
    Console().print(table)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@recordings.command("get")
@config_option
@db_option
@click.argument("recording_id", type=int)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), default=Path("."),
    help="File or directory to copy the recording to (default: here).",
)  # fmt: skip
def recordings_get(config_dir: Path, db_path: Path | None, recording_id: int, output: Path) -> None:
    """Copy a recording out, verify it, and mark it downloaded."""
    err = Console(stderr=True)
    directory, _ = _directory(config_dir, err)
    db = calllog_db(config_dir, db_path, err)
    into_dir = output.is_dir()

    async def work() -> Path:
        store = await CallLogStore.open(db)
        try:
            rec = await store.get_recording(recording_id)
            if rec is None:
                err.print(f"no recording {recording_id}", style="red")
                raise SystemExit(EXIT_BAD_INPUT)
            source = directory / rec.path
            target = output / Path(rec.path).name if into_dir else output
            await asyncio.to_thread(shutil.copyfile, source, target)
            if rec.sha256 and await asyncio.to_thread(_sha256, target) != rec.sha256:
                err.print(f"{source}: content differs from the recorded sha256", style="red")
                raise SystemExit(EXIT_FAILURE)
            await store.set_downloaded(recording_id, time.time())
            return target
        finally:
            await store.close()

    click.echo(str(run_or_exit(work(), err)))


@recordings.command("prune")
@config_option
@db_option
@click.option("--older-than-days", type=click.IntRange(1), help="Default: retention_days.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def recordings_prune(
    config_dir: Path, db_path: Path | None, older_than_days: int | None, dry_run: bool
) -> None:
    """Delete recordings older than the retention period (file and metadata)."""
    err = Console(stderr=True)
    directory, retention = _directory(config_dir, err)
    days = older_than_days or retention
    if days is None:
        err.print("no retention: set recordings.retention_days or --older-than-days", style="red")
        raise SystemExit(EXIT_BAD_INPUT)
    cutoff = time.time() - days * 86400
    db = calllog_db(config_dir, db_path, err)

    async def work() -> tuple[int, int]:
        store = await CallLogStore.open(db)
        try:
            old = await store.list_recordings(until=cutoff, limit=1_000_000)
            if dry_run:
                return len(old), 0
            removed: list[int] = []
            for rec in old:
                path = directory / rec.path
                try:
                    await asyncio.to_thread(path.unlink, missing_ok=True)
                except OSError as exc:
                    err.print(f"{path}: not removed: {exc.strerror}", markup=False)
                    continue
                removed.append(rec.id)
            await store.delete_recordings(removed)
            return len(old), len(removed)
        finally:
            await store.close()

    found, removed = run_or_exit(work(), err)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {found if dry_run else removed} of {found} recording(s) older than {days} days"
    )
    if removed < found and not dry_run:
        raise SystemExit(EXIT_FAILURE)
