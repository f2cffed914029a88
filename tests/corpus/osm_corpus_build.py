"""The session corpus behind the ``osm_corpus`` fixture (conftest.py), at the issue's scale: the Kotka
OSM fixture → the real ``olmoearth-data sample`` CLI (4 tiles × 4 centre dates = 16 samples) → a full
twin serving every ``default``-set source for exactly those samples → ``build_corpus`` (2 workers, 4
samples per shard → 4 shards, the OSM raster from the sampler's extraction) → ``compute_norm_stats``.

While the twin is up, a few samples are also materialised directly with ``materialise_sample`` (the
per-tile path, outside dask and with no search cache) so tests can compare them with the corpus.
The twin's catalogues are cached under ``build/twin/cache`` (shared with ``make demo``/``make
dataset``), so only the first run pays for generating them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio

from olmoearth_data.build import GDAL_OPTIONS, BuildConfig, BuildSummary, build_corpus
from olmoearth_data.materialise.osm_raster import OsmInput
from olmoearth_data.materialise.sample import materialise_sample
from olmoearth_data.modalities import modality_set
from olmoearth_data.results import SampleResult
from olmoearth_data.samples import Sample, read_sample_table
from olmoearth_data.stats import compute_norm_stats
from olmoearth_twin.fixtures import fixture_path
from olmoearth_twin.full import FullCatalogs, serve_full_twin

REPO_ROOT = Path(__file__).resolve().parents[2]
KOTKA_OSM = fixture_path("osm/test.osm.pbf")
TWIN_CACHE = REPO_ROOT / "build" / "twin" / "cache"
#: Centre dates per tile (the sampler's ``--dates-per-tile``): Kotka's 4 tiles × 4 = 16 samples.
DATES_PER_TILE = 4
SAMPLES_PER_SHARD = 4
WORKERS = 2
TWIN_SEED = 0


@dataclass(frozen=True)
class OsmCorpus:
    """What the session build produced and what the tests compare it with."""

    work: Path
    table: Path
    corpus: Path
    osm_dir: Path
    samples: list[Sample]
    summary: BuildSummary
    #: ``compute_norm_stats``' return value (also stored in the corpus).
    stats: dict[str, dict[str, dict[str, float]]]
    #: corpus row → ``materialise_sample`` of that row, run directly against the same twin.
    direct: dict[int, SampleResult]
    catalogs: FullCatalogs
    #: seconds per stage (sample, twin, build, direct, stats), for the report.
    timings: dict[str, float] = field(default_factory=dict)

    def manifest(self, which: str) -> dict[str, Any]:
        """The twin's manifest of ``sentinel2``, ``collections`` or ``maps``."""
        return getattr(self.catalogs, which).manifest()


def build_osm_corpus(work: Path) -> OsmCorpus:
    """Sample, serve the full twin, build, materialise the checked samples directly, compute stats."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    table = work / "samples.parquet"
    cmd = [sys.executable, "-m", "olmoearth_data.cli", "sample", "--osm", str(KOTKA_OSM), "--out",
           str(table), "--dates-per-tile", str(DATES_PER_TILE), "--seed", "0", "--quiet"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    samples = read_sample_table(table)
    osm_dir = table.with_suffix(".work")  # the sampler's default extraction folder
    timings["sample"] = time.perf_counter() - t

    t = time.perf_counter()
    with serve_full_twin(samples=samples, seed=TWIN_SEED, cache_dir=TWIN_CACHE, root=work / "twin") as full:
        timings["twin"] = time.perf_counter() - t
        t = time.perf_counter()
        config = BuildConfig(
            corpus=str(work / "corpus.zarr"), sample_table=str(table), modalities="default",
            samples_per_shard=SAMPLES_PER_SHARD, cache_dir=str(work / "cache"), workers=WORKERS,
            catalog=full.catalog, osm_dir=str(osm_dir),
        )  # fmt: skip
        summary = build_corpus(config)
        timings["build"] = time.perf_counter() - t

        t = time.perf_counter()
        direct = {}
        catalog = full.catalog
        osm = OsmInput.from_extraction(str(osm_dir))
        with rasterio.Env(**GDAL_OPTIONS):
            for i in (0, len(samples) - 1):  # first and last: different tiles, dates and shards
                direct[i] = materialise_sample(
                    index=i, sample=samples[i], specs=modality_set("default"),
                    client=catalog.open_client(), stac_url=catalog.stac_url, sign=catalog.signer(),
                    cache=None, osm=osm, tile_indexes=catalog.tile_indexes, retry=catalog.retry,
                )  # fmt: skip
        timings["direct"] = time.perf_counter() - t
    t = time.perf_counter()
    stats = compute_norm_stats(config.corpus)
    timings["stats"] = time.perf_counter() - t
    print("osm_corpus timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    return OsmCorpus(
        work=work, table=table, corpus=Path(config.corpus), osm_dir=osm_dir, samples=samples,
        summary=summary, stats=stats, direct=direct, catalogs=full.catalogs, timings=timings,
    )  # fmt: skip
