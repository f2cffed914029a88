"""The materialise context's read tasks (issue #15): results in order, overlap bounded by
``max_in_flight``, the first failure in order raised, leases held per task, nested tasks inline."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from olmoearth_data.materialise.context import MaterialiseContext, ReadSettings
from olmoearth_data.modalities import get_modality

S2 = get_modality("sentinel2_l2a")


class _Gauge:
    """How many tasks run at once (high-water mark), and the leases taken."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = self.leases = 0

    @contextlib.contextmanager
    def running(self):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            yield
        finally:
            with self.lock:
                self.now -= 1

    @contextlib.contextmanager
    def lease(self, spec):
        with self.lock:
            self.leases += 1
        yield


def _context(read: ReadSettings, gauge: _Gauge) -> MaterialiseContext:
    return MaterialiseContext(client=None, stac_url="http://stac.invalid", sign=lambda h: h, retry=None,
                              cache=None, lease=gauge.lease, read=read)  # fmt: skip


def _task(gauge: _Gauge, value: int, *, fail: bool = False):
    def run() -> int:
        with gauge.running():
            time.sleep(0.02)
            if fail:
                raise RuntimeError(f"task {value} failed")
            return value * value

    return run


@pytest.mark.parametrize("width", [1, 3])
def test_results_in_order_and_overlap_bounded(width: int) -> None:
    gauge = _Gauge()
    with _context(ReadSettings(max_in_flight=width), gauge) as ctx:
        assert ctx.run(S2, [_task(gauge, i) for i in range(10)]) == [i * i for i in range(10)]
    assert gauge.peak == width
    assert gauge.leases == 10  # one lease per task


def test_first_failure_in_order_is_raised() -> None:
    gauge = _Gauge()
    with _context(ReadSettings(max_in_flight=4), gauge) as ctx:
        tasks = [_task(gauge, i, fail=i in (5, 2)) for i in range(8)]
        with pytest.raises(RuntimeError, match="task 2 failed"):
            ctx.run(S2, tasks)
        assert gauge.now == 0  # nothing left running behind the raise


def test_tasks_started_by_a_task_run_inline_under_its_lease() -> None:
    gauge = _Gauge()
    with _context(ReadSettings(max_in_flight=4), gauge) as ctx:

        def outer(i: int):
            return lambda: ctx.run(S2, [lambda: (i, threading.current_thread().name)] * 2)

        results = ctx.run(S2, [outer(i) for i in range(3)])
    for i, inner in enumerate(results):
        assert [v for v, _ in inner] == [i, i]
        assert inner[0][1] == inner[1][1]  # the outer task's own thread
    assert gauge.leases == 3  # the inner tasks took no second lease (a lease of 1 would deadlock)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        ReadSettings(max_in_flight=0)
    assert ReadSettings.sequential() == ReadSettings(max_in_flight=1, cloud_gdal=False, range_reads=False)
