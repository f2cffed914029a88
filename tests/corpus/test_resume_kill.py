"""A build killed with SIGKILL at a random point resumes to exactly the corpus an uninterrupted build
writes, and a rerun of a finished build writes nothing (issue #8)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from olmoearth_data.build import BuildConfig, build_corpus, pending_shards
from olmoearth_data.cube.layout import MAP_COORDS, open_layout
from olmoearth_data.index import index_path
from olmoearth_data.missing import SampleStatus
from olmoearth_data.samples import Sample, write_sample_table
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_twin import Twin
from olmoearth_twin.catalog.samples import SMALL_SAMPLES

pytestmark = [pytest.mark.twin, pytest.mark.slow]

#: 6 samples in 6 one-sample shards: the twin's two S2 tiles, three times each (the catalogue only
#: covers those two tiles; repeated rows are distinct corpus samples all the same).
N_SAMPLES = 6


def _samples() -> list[Sample]:
    return [Sample(s.tile, s.centre) for _ in range(N_SAMPLES // 2) for s in SMALL_SAMPLES]


def _walk(group: zarr.Group, prefix: str = ""):
    for name, arr in group.arrays():
        yield prefix + name, arr
    for name, sub in group.groups():
        yield from _walk(sub, prefix + name + "/")


def corpus_checksums(path: Path) -> dict[str, str]:
    """SHA-256 of every array's decoded values (data, present, reason, status, coordinates)."""
    group = zarr.open_group(str(path), mode="r")
    out = {}
    for name, arr in _walk(group):
        values = arr[...]
        raw = (
            values.astype(str).tobytes() if values.dtype == object else np.ascontiguousarray(values).tobytes()
        )
        out[name] = hashlib.sha256(raw).hexdigest()
    return out


def shard_files(path: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every chunk/shard file (metadata documents are rewritten by consolidation)."""
    return {
        str(p.relative_to(path)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in path.rglob("*")
        if p.is_file() and "/c/" in f"/{p.relative_to(path).as_posix()}"
    }


def _build_cmd(twin: Twin, work: Path, corpus: Path) -> list[str]:
    return [
        sys.executable, "-m", "olmoearth_data.cli", "build",
        "--samples", str(work / "samples.parquet"), "--corpus", str(corpus), "--modalities", "s2",
        "--samples-per-shard", "1", "--workers", "2", "--cache-dir", str(work / "cache"),
        "--stac-url", twin.stac_url, "--blob-endpoint", twin.assets_url, "--retries", "3",
        "--backoff-s", "0.01",
    ]  # fmt: skip


def _live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that still run (zombies excluded: a container's init may not reap)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


def _summary(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") : stdout.rindex("}") + 1])


@pytest.fixture(scope="module")
def work(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("resume")
    write_sample_table(work / "samples.parquet", samples=_samples())
    return work


@pytest.fixture(scope="module")
def reference(twin: Twin, work: Path) -> Path:
    """The uninterrupted build, in process."""
    config = BuildConfig(
        corpus=str(work / "reference.zarr"),
        sample_table=str(work / "samples.parquet"),
        modalities="s2",
        samples_per_shard=1,
        cache_dir=str(work / "cache"),
        workers=2,
        catalog=CatalogConfig(
            stac_url=twin.stac_url,
            blob_endpoint=twin.assets_url,
            retry=RetryPolicy(attempts=3, backoff_s=0.01),
        ),
    )
    summary = build_corpus(config)
    assert (summary.shards_total, summary.shards_built, summary.complete) == (N_SAMPLES, N_SAMPLES, N_SAMPLES)
    return Path(config.corpus)


def test_sigkill_mid_build_resumes_to_the_same_corpus(twin: Twin, work: Path, reference: Path) -> None:
    corpus = work / "killed.zarr"
    cmd = _build_cmd(twin, work, corpus)
    rng = random.Random(os.getpid())
    # A fresh session: the CLI, its LocalCluster scheduler and worker processes share one process group.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    want_done = rng.randint(1, N_SAMPLES - 2)
    deadline = time.monotonic() + 120
    killed_at = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (corpus / "status" / "zarr.json").exists():
                status = zarr.open_group(str(corpus), mode="r")["status"][:]
                done = int((status != SampleStatus.PENDING).sum())
                if done >= want_done:
                    killed_at = done
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and killed_at is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert killed_at is not None, "the build finished (or stalled) before it could be killed"
    # No worker survives the kill to keep writing while the resumed build runs.
    for _ in range(100):
        if not _live_group_members(proc.pid):
            break
        time.sleep(0.1)
    assert _live_group_members(proc.pid) == []
    layout, _ = open_layout(corpus)
    left = pending_shards(corpus, layout)
    assert 1 <= len(left) <= N_SAMPLES - 1, "the kill must land after one shard and before the last"

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)
    summary = _summary(resumed.stdout)
    assert summary["shards_built"] == len(left)
    assert summary["complete"] == N_SAMPLES
    assert corpus_checksums(corpus) == corpus_checksums(reference)
    # the index, item ids from the shard fragments included, is the uninterrupted build's too
    pd.testing.assert_frame_equal(pd.read_parquet(index_path(corpus)), pd.read_parquet(index_path(reference)))

    before = shard_files(corpus)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)
    assert _summary(again.stdout)["shards_built"] == 0
    assert shard_files(corpus) == before  # nothing rewritten


def test_every_sample_array_is_sharded_by_the_task_unit(reference: Path) -> None:
    """Every array with a leading ``sample`` dimension is sharded by ``samples_per_shard`` along it (or
    written once, up front, at creation), so a task's whole-shard writes never touch another's shard."""
    layout, _ = open_layout(reference)
    group = zarr.open_group(str(reference), mode="r")
    written_at_creation = {"tile_id", "epsg", "col", "row", "x0", "y0", "lon", "lat", "centre_date"}
    written_at_creation |= {"period_start", "period_end", *MAP_COORDS}  # MAP_COORDS: in every bandset group
    for name, arr in _walk(group):
        dims = arr.metadata.dimension_names or ()
        if not dims or dims[0] != "sample" or name.rsplit("/", 1)[-1] in written_at_creation:
            continue
        assert arr.shards is not None, name
        assert arr.shards[0] == layout.samples_per_shard, name
        assert arr.shards[1:] == arr.shape[1:], f"{name}: a shard must span every other dimension"


class _StatusFails:
    """A zarr group whose ``status`` array cannot be written: a kill between data and status."""

    def __init__(self, group: zarr.Group) -> None:
        self._group = group

    def __getitem__(self, key: str):
        if key == "status":
            raise KeyboardInterrupt("killed before status")
        return self._group[key]


def test_a_shard_killed_before_its_status_stays_pending(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from olmoearth_data.cube import writer
    from olmoearth_data.cube.layout import create_corpus
    from olmoearth_data.modalities import modality_set
    from olmoearth_data.results import ModalityResult, SampleResult

    specs = modality_set("s2")
    path = tmp_path / "partial.zarr"
    layout = create_corpus(path, samples=_samples()[:2], specs=specs, samples_per_shard=1)
    ref = zarr.open_group(str(reference), mode="r")
    s2 = specs[0]
    result = SampleResult(
        index=1, status=SampleStatus.COMPLETE, status_reason="",
        modalities={s2.name: ModalityResult(
            arrays={bs.name: ref[f"{s2.name}/{bs.name}/data"][1] for bs in s2.bandsets},
            present=ref[f"{s2.name}/present"][1], reason=ref[f"{s2.name}/reason"][1])},
    )  # fmt: skip
    real_open = zarr.open_group
    monkeypatch.setattr(writer.zarr, "open_group", lambda *a, **k: _StatusFails(real_open(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        writer.write_samples(path, layout=layout, specs=specs, results=[result])
    monkeypatch.undo()
    group = zarr.open_group(str(path), mode="r")
    assert group[f"{s2.name}/10m/data"][1].any(), "the data reached the disk"
    assert list(group["status"][:]) == [SampleStatus.PENDING] * 2
    assert pending_shards(path, layout) == [0, 1], "a shard without its status is rebuilt on resume"
