"""Worker processes for the OSM pass: this process as worker 0 plus forked worker processes with one
inbox each, or this process alone. Jobs are handed out in order, so each worker sees its pieces in
increasing order (the point merge relies on it).

Start-up: on Linux the workers are ``fork``ed at once, before this process starts any job or creates
its libosmium thread pool, so they inherit the imported modules and start in milliseconds (a
``forkserver`` or ``spawn`` worker first imports osmium, pyarrow, shapely, pyproj: ~1 CPU-second, the
whole node stage of a 30 MB file). Forking is safe at that point because no thread of this pass exists
yet (the queues' feeder threads start with their first message) and the threads a caller may have
(OpenBLAS, Arrow's pool) are idle and have fork handlers. A caller that runs libosmium/Arrow work in
*other threads* while it starts the pass should run the pass in a process of its own, or build the
pool with ``start_method="forkserver"``. Elsewhere (macOS, Windows) the platform's default applies.
Workers stop on the coordinator's stop message, or by themselves once it has died.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Callable, Sequence

from olmoearth_data.osm.worker import PassConfig, Worker

#: seconds between a waiting worker's checks that its coordinator is still alive
_ORPHAN_CHECK_S = 5.0


class WorkerError(RuntimeError):
    """A job failed in a worker; ``kind`` is the exception class name there."""

    def __init__(self, kind: str, message: str, trace: str) -> None:
        super().__init__(f"{kind}: {message}\n{trace}")
        self.kind, self.message = kind, message


def _worker_main(wid: int, cfg: PassConfig, inbox: mp.Queue, outbox: mp.Queue, parent: int) -> None:
    worker = Worker(wid, cfg)
    while True:
        try:
            msg = inbox.get(timeout=_ORPHAN_CHECK_S)
        except queue.Empty:
            if os.getppid() != parent:  # the coordinator was killed: nobody will send the stop message
                return
            continue
        if msg is None:
            break
        jid, job = msg
        try:
            outbox.put((jid, wid, True, worker.run(job)))
        except BaseException as exc:  # reported to the coordinator, which raises
            outbox.put((jid, wid, False, (type(exc).__name__, str(exc), traceback.format_exc())))


class InlinePool:
    """One worker, in this process."""

    def __init__(self, cfg: PassConfig) -> None:
        self.worker = Worker(0, cfg)
        self.size = 1

    def run(self, job: object) -> object:
        try:
            return self.worker.run(job)
        except Exception as exc:  # same error type as from a worker process
            raise WorkerError(type(exc).__name__, str(exc), traceback.format_exc()) from exc

    def map(self, jobs: Sequence[object], done: Callable[[int, object], None] | None = None) -> list[object]:
        out = []
        for i, job in enumerate(jobs):
            out.append(self.run(job))
            if done:
                done(i, out[-1])
        return out

    def broadcast(self, job: object) -> None:
        self.run(job)

    def close(self) -> None:
        self.worker.close()


class ProcessPool:
    """This process as worker 0 plus ``n - 1`` worker processes, each with its own inbox.

    Each worker process is kept ``DEPTH`` jobs ahead, so it never waits while this process is busy
    with a job of its own. ``start_method``: ``"fork"`` where available (module doc), else the
    platform's default.
    """

    DEPTH = 2

    def __init__(self, cfg: PassConfig, n: int, *, start_method: str | None = None) -> None:
        if start_method is None:
            start_method = "fork" if "fork" in mp.get_all_start_methods() else None
        ctx = mp.get_context(start_method)
        if ctx.get_start_method() == "forkserver":  # the server imports the worker code once
            ctx.set_forkserver_preload(["olmoearth_data.osm.worker"])
        self.size = n
        self.outbox: mp.Queue = ctx.Queue()
        self.inboxes = {wid: ctx.Queue() for wid in range(1, n)}
        self.procs = {
            wid: ctx.Process(target=_worker_main, args=(wid, cfg, box, self.outbox, os.getpid()), daemon=True)
            for wid, box in self.inboxes.items()
        }
        for proc in self.procs.values():  # before this process creates any thread of its own (module doc)
            proc.start()
        self.local = InlinePool(cfg)
        self._inflight = dict.fromkeys(self.inboxes, 0)

    def _get(self, *, block: bool) -> tuple[int, int, bool, object] | None:
        """The next message from a worker process (None: none yet, when not blocking)."""
        while True:
            try:
                return self.outbox.get(timeout=2.0) if block else self.outbox.get_nowait()
            except queue.Empty:
                if not block:
                    return None
                dead = [p for p in self.procs.values() if p.pid is not None and p.exitcode is not None]
                if dead:
                    raise RuntimeError(f"OSM worker process exited with code {dead[0].exitcode}") from None

    def map(self, jobs: Sequence[object], done: Callable[[int, object], None] | None = None) -> list[object]:
        """Run ``jobs``, handed out in order (each worker gets increasing indices); results in job order."""
        results: list[object] = [None] * len(jobs)
        nxt = finished = 0

        def record(msg: tuple[int, int, bool, object]) -> None:
            nonlocal finished
            jid, wid, ok, value = msg
            if not ok:
                raise WorkerError(*value)  # type: ignore[misc]
            self._inflight[wid] -= 1
            results[jid] = value
            finished += 1
            if done:
                done(jid, value)

        while finished < len(jobs):
            while (msg := self._get(block=False)) is not None:
                record(msg)
            for wid, box in self.inboxes.items():
                while self._inflight[wid] < self.DEPTH and nxt < len(jobs):
                    box.put((nxt, jobs[nxt]))
                    self._inflight[wid] += 1
                    nxt += 1
            if nxt < len(jobs):  # this process takes the next job itself
                results[nxt] = self.local.run(jobs[nxt])
                if done:
                    done(nxt, results[nxt])
                nxt, finished = nxt + 1, finished + 1
            elif finished < len(jobs):
                record(self._get(block=True))  # type: ignore[arg-type]
        return results

    def broadcast(self, job: object) -> None:
        """Run ``job`` in this process and in every worker process."""
        self.local.broadcast(job)
        for box in self.inboxes.values():
            box.put((-1, job))
        for _ in self.inboxes:
            _, _, ok, value = self._get(block=True)  # type: ignore[misc]
            if not ok:
                raise WorkerError(*value)  # type: ignore[misc]

    def close(self) -> None:
        """Stop the workers."""
        self.local.close()
        for box in self.inboxes.values():
            box.put(None)
        for p in self.procs.values():
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
