"""Discarding a half-written staging store safely after an interruption.

zarr v3 does its I/O on a dedicated event-loop thread; the calling thread only waits for it. A Ctrl-C
(``KeyboardInterrupt``) ends the wait, not the writes: they go on in the I/O thread, and a folder
removed at once can be recreated by a write still in flight (seen on a loaded machine: the staging
store of an interrupted creation came back after its removal). So the removal first waits for zarr's
pending I/O, then removes, and removes again if anything reappeared.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

__all__ = ["discard_staging", "wait_for_zarr_io"]


def wait_for_zarr_io(*, timeout_s: float = 30.0) -> bool:
    """Wait until every task on zarr's I/O loop has finished (at most ``timeout_s`` seconds).

    Returns False if some were still running at the timeout. Safe when zarr never started its loop.
    """
    from zarr.core import sync as zarr_sync

    loop = zarr_sync.loop[0]
    if loop is None or loop.is_closed() or not loop.is_running():
        return True

    async def _pending_done() -> bool:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout_s)
        return not still

    try:
        return asyncio.run_coroutine_threadsafe(_pending_done(), loop).result(timeout_s + 5)
    except (TimeoutError, RuntimeError):
        return False


def discard_staging(staging: Path, *, settle_s: float = 0.2) -> None:
    """Remove ``staging`` (a folder of :func:`~olmoearth_data.cube.layout.staging_path`) for good,
    after zarr's in-flight writes into it have finished (module doc)."""
    wait_for_zarr_io()
    for _ in range(5):
        shutil.rmtree(staging, ignore_errors=True)
        time.sleep(settle_s)
        if not staging.exists():
            return
        wait_for_zarr_io()
