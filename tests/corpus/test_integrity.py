"""A damaged corpus is an error, never data: byte flip, swapped index entries, deleted shard file.

Each kind of damage is made on a copy of the session's fake corpus (``fake_corpus``: real Zarr
written by the real writer) and must stop the loader's direct reader and its zarr fallback, the
``olmoearth-data stats`` CLI and the ``olmoearth-data verify`` CLI with a message naming the damaged
sample and file; ``verify`` must name exactly the damaged complete samples. ``verify --reset`` puts
them back to pending so that a build (here: its shard writer, as ``build_shard`` calls it) rebuilds
exactly their shards, after which everything is clean again; the loader refuses the stale stats in
between.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr

from olmoearth_data.build import pending_shards
from olmoearth_data.coverage import COVERAGE_ATTR, StaleStatsError
from olmoearth_data.cube.layout import open_layout
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.modalities import registry_from_dict
from olmoearth_data.shardfile import EMPTY, CorpusDamageError, ShardFormat
from olmoearth_data.stats import compute_norm_stats
from olmoearth_data.testing import fake_sample_result, fake_samples
from olmoearth_data.verify import reset_damaged, verify_corpus
from olmoearth_model.data.reader import CorpusReader, Crop

_SCRIPT = Path(sys.executable).with_name("olmoearth-data")  # the installed console script
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "olmoearth_data.cli"]
ARRAY = "sentinel2_l2a/10m/data"
WHOLE = Crop(0, 0, 256, tuple(range(12)))  # every pixel and period of a sample: touches every chunk
CORNER = Crop(0, 0, 32, tuple(range(12)))  # the first inner chunk of every bandset (and the shard index)


def _shard_file(corpus: Path, shard: int) -> Path:
    return corpus / ARRAY / "c" / str(shard) / "0" / "0" / "0" / "0"


def _index(corpus: Path, shard: int) -> tuple[np.ndarray, int]:
    """The index entries ``[n, 2]`` of a shard of ``ARRAY`` and the index's byte offset in the file."""
    fmt = ShardFormat.from_zarr(zarr.open_array(str(corpus / ARRAY), mode="r"))
    raw = _shard_file(corpus, shard).read_bytes()
    base = len(raw) - fmt.index_nbytes
    return np.frombuffer(raw[base:-4], dtype="<u8").reshape(-1, 2), base


def flip_byte(corpus: Path) -> None:
    """Flip one bit in the middle of the first stored chunk of shard 0 (rows 0–1)."""
    entries, _ = _index(corpus, 0)
    offset, nbytes = (int(v) for v in entries[np.flatnonzero(entries[:, 0] != EMPTY)[0]])
    path = _shard_file(corpus, 0)
    raw = bytearray(path.read_bytes())
    raw[offset + nbytes // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def swap_index_entries(corpus: Path) -> None:
    """Swap two stored chunks' entries in the index of shard 1 (rows 2–3), as a bad copy would."""
    entries, base = _index(corpus, 1)
    i, j = np.flatnonzero(entries[:, 0] != EMPTY)[[0, 5]]
    path = _shard_file(corpus, 1)
    raw = bytearray(path.read_bytes())
    a, b = base + 16 * int(i), base + 16 * int(j)
    raw[a : a + 16], raw[b : b + 16] = raw[b : b + 16], raw[a : a + 16]
    path.write_bytes(bytes(raw))


def delete_shard(corpus: Path) -> None:
    """Delete the shard file of shard 2 (rows 4–5)."""
    os.remove(_shard_file(corpus, 2))


DAMAGE: dict[str, tuple[Callable[[Path], None], int, str]] = {
    # kind: (how, first damaged shard, what the error says)
    "byte-flip": (flip_byte, 0, "chunk crc32c mismatch"),
    "index-swap": (swap_index_entries, 1, "shard index crc32c mismatch"),
    "deleted-shard": (delete_shard, 2, "missing"),
}


def _complete_rows(corpus: Path, shard: int) -> list[int]:
    status = zarr.open_group(str(corpus), mode="r")["status"][:]
    return [i for i in range(2 * shard, min(2 * shard + 2, len(status))) if status[i] == 1]


@pytest.fixture(scope="module")
def damaged(fake_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Two damaged copies of the fake corpus (shards of 2 samples, S2 + S1 + WorldCover) per kind:
    ``(kind, "read")`` for the loader and ``stats`` (which must leave it as it is), ``(kind, "reset")``
    for ``verify --reset``."""
    root = tmp_path_factory.mktemp("damaged")
    out = {}
    for kind, (damage, _, _) in DAMAGE.items():
        for use in ("read", "reset"):
            out[(kind, use)] = Path(shutil.copytree(fake_corpus, root / f"{kind}-{use}.zarr"))
            damage(out[(kind, use)])
    return out


@pytest.fixture(scope="module")
def cli_runs(damaged: dict[tuple[str, str], Path]) -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """``stats`` and ``verify --reset`` on every kind's copies, as real processes (started together)."""
    procs = {}
    for kind in DAMAGE:
        for cmd, use in ((["stats"], "read"), (["verify", "--reset"], "reset")):
            procs[(kind, cmd[0])] = subprocess.Popen(
                [*CLI, *cmd, str(damaged[(kind, use)])],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
    out = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        out[key] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


def test_a_clean_corpus_verifies_and_reads(fake_corpus: Path) -> None:
    report = verify_corpus(fake_corpus)
    assert report.ok and report.complete == 6 and report.chunks > 0 and report.shard_files > 0
    reader = CorpusReader(fake_corpus)
    for row in reader.complete_indices:
        reader.read(int(row), WHOLE)


@pytest.mark.parametrize("kind", DAMAGE)
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "zarr"])
def test_the_loader_refuses_damaged_data(
    damaged: dict[tuple[str, str], Path], fake_corpus: Path, kind: str, direct: bool
) -> None:
    _, shard, says = DAMAGE[kind]
    reader = CorpusReader(damaged[(kind, "read")], direct=direct)
    assert bool(reader.direct_bandsets) is direct
    row = _complete_rows(fake_corpus, shard)[-1 if kind == "index-swap" else 0]
    with pytest.raises(CorpusDamageError, match=f"sample {row} .*sentinel2_l2a/10m is damaged") as err:
        reader.read(row, CORNER)
    if direct:  # zarr's own message is "Stored and computed checksum do not match"
        assert says in str(err.value) and "olmoearth-data verify" in str(err.value)
    # samples in other shards read as before
    for other in reader.complete_indices:
        if other // 2 != shard:
            reader.read(int(other), CORNER)


@pytest.mark.parametrize("kind", DAMAGE)
def test_stats_cli_stops_on_damage_and_writes_nothing(
    damaged: dict[tuple[str, str], Path], cli_runs: dict, fake_corpus: Path, kind: str
) -> None:
    _, shard, says = DAMAGE[kind]
    run = cli_runs[(kind, "stats")]
    assert run.returncode == 2, run.stderr
    first = run.stderr.strip().splitlines()[0]
    assert (
        first.startswith("olmoearth-data: error: corpus ")
        and says in first
        and f"sample {_complete_rows(fake_corpus, shard)[0]}" in first
    )
    before = zarr.open_group(str(fake_corpus), mode="r")["sentinel2_l2a"].attrs
    after = zarr.open_group(str(damaged[(kind, "read")]), mode="r")["sentinel2_l2a"].attrs
    assert after["norm_stats"] == before["norm_stats"] and after[COVERAGE_ATTR] == before[COVERAGE_ATTR]


@pytest.mark.parametrize("kind", DAMAGE)
def test_verify_cli_names_exactly_the_damaged_samples_and_resets_them(
    damaged: dict[tuple[str, str], Path], cli_runs: dict, fake_corpus: Path, kind: str
) -> None:
    _, shard, says = DAMAGE[kind]
    run = cli_runs[(kind, "verify")]
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    expected = _complete_rows(fake_corpus, shard)
    if kind == "byte-flip":
        expected = expected[:1]  # the first chunk belongs to the shard's first sample only
    assert [d["sample"] for d in doc["damaged_samples"]] == expected
    for d in doc["damaged_samples"]:
        assert d["problems"] and all(p.startswith("sentinel2_l2a/10m: ") and says in p for p in d["problems"])
        assert f"damaged: sample {d['sample']} ({d['tile_id']})" in run.stderr
    assert doc["complete_samples"] == 6
    # --reset: exactly those rows are pending now, so a `build` rerun rebuilds exactly their shards
    corpus = damaged[(kind, "reset")]
    assert doc["reset_to_pending"] == expected
    status = zarr.open_group(str(corpus), mode="r")["status"][:]
    assert [i for i in range(len(status)) if status[i] == 0] == expected
    assert pending_shards(corpus, open_layout(corpus)[0]) == [shard]
    quarantined = Path(f"{corpus}.quarantine") / ARRAY / "c" / str(shard) / "0" / "0" / "0" / "0"
    assert quarantined.exists() is (kind == "index-swap")  # an unreadable index would stop the rebuild


def test_a_truncated_shard_file_is_damage_too(fake_corpus: Path, tmp_path: Path) -> None:
    """A partial copy: the file ends early, so its last bytes are not its index."""
    corpus = Path(shutil.copytree(fake_corpus, tmp_path / "c.zarr"))
    path = _shard_file(corpus, 0)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorpusDamageError, match=r"sample 0 .*shard index crc32c mismatch"):
        CorpusReader(corpus).read(0, WHOLE)
    report = verify_corpus(corpus)
    assert [d.sample for d in report.damaged] == _complete_rows(corpus, 0)
    assert report.unreadable == (f"{ARRAY}/c/0/0/0/0/0",)


def test_reset_then_rebuild_makes_the_corpus_whole_again(
    damaged: dict[tuple[str, str], Path], cli_runs: dict, tmp_path: Path
) -> None:
    """After ``verify --reset`` (the CLI, in ``cli_runs``) and a second damage reset in-process, the
    build's shard writer rewrites exactly the pending shards → verify clean; stats are refused until
    recomputed."""
    corpus = Path(shutil.copytree(damaged[("index-swap", "reset")], tmp_path / "c.zarr"))
    delete_shard(corpus)  # a second kind of damage in the same corpus
    assert reset_damaged(corpus, report=verify_corpus(corpus)) == [4, 5]
    group = zarr.open_group(str(corpus), mode="r")
    assert list(group["status"][:]) == [1, 1, 2, 0, 0, 0, 1]
    assert str(group["status_reason"][3:4][0]).startswith("damaged: sentinel2_l2a/10m: ")
    layout, meta = open_layout(corpus)
    assert pending_shards(corpus, layout) == [1, 2]  # what an ordinary `build` rerun rebuilds
    with pytest.raises(
        StaleStatsError, match="stale: computed over 6 complete samples of 7, the corpus now has 3"
    ):
        CorpusReader(corpus)

    # the rebuild, as build_shard writes a shard (the fake corpus's own pixels for those rows)
    specs = registry_from_dict(meta["modalities"])
    params = meta["fake_corpus"]
    samples = fake_samples(n_samples=params["n_samples"], seed=params["seed"])
    assert [s.tile.id for s in samples] == list(group["tile_id"][:])
    for shard in (1, 2):
        start, stop = layout.shard_range(shard)
        results = [
            fake_sample_result(index=i, sample=samples[i], specs=specs, seed=params["seed"], drop=i == 2)
            for i in range(start, stop)
        ]
        write_samples(corpus, layout=layout, specs=specs, results=results)
    assert verify_corpus(corpus).ok
    compute_norm_stats(corpus)
    reader = CorpusReader(corpus)  # fresh stats: accepted
    for row in reader.complete_indices:
        reader.read(int(row), CORNER)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")  # odc-geo
def test_a_real_build_rebuilds_exactly_the_reset_samples(s2_corpus: Path, twin, tmp_path: Path) -> None:
    """On the twin: damage a copy of the real Sentinel-2 corpus, reset, rebuild the pending shards with
    the build's own shard task (``build_shard``, what ``build`` runs on dask) → clean, same pixels."""
    from olmoearth_data.build import BuildConfig, build_shard
    from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy

    corpus = Path(shutil.copytree(s2_corpus, tmp_path / "s2.zarr"))
    index_file = corpus / ARRAY / "c" / "0" / "0" / "0" / "0" / "0"
    raw = bytearray(index_file.read_bytes())
    raw[-10] ^= 0xFF  # the shard index of sample 0
    index_file.write_bytes(bytes(raw))
    report = verify_corpus(corpus)
    assert [d.sample for d in report.damaged] == [0] and len(report.unreadable) == 1
    assert reset_damaged(corpus, report=report) == [0]
    layout, _ = open_layout(corpus)
    assert pending_shards(corpus, layout) == [0]

    work = s2_corpus.parent  # the session build's sample table and search cache
    catalog = CatalogConfig(
        stac_url=twin.stac_url, blob_endpoint=twin.assets_url, retry=RetryPolicy(attempts=3, backoff_s=0.01)
    )
    config = BuildConfig(
        corpus=str(corpus),
        sample_table=str(work / "samples.parquet"),
        modalities="s2",
        samples_per_shard=1,
        cache_dir=str(work / "cache"),
        workers=1,
        catalog=catalog,
    )
    for shard in pending_shards(corpus, layout):
        build_shard(config, shard)
    assert verify_corpus(corpus).ok and pending_shards(corpus, layout) == []
    rebuilt = zarr.open_group(str(corpus), mode="r")[ARRAY][0]
    np.testing.assert_array_equal(rebuilt, zarr.open_group(str(s2_corpus), mode="r")[ARRAY][0])
