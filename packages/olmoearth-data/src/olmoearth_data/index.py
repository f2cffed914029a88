"""The sample index: one GeoParquet row per corpus sample, for finding samples without opening the cube.

Where it lives (docs/corpus-schema.md, "Sample index"): beside the store, never inside it (zarr treats
any foreign folder in a store as a broken node):

- ``<name>.index/shard-00000.parquet`` — one **fragment** per shard, written atomically by the build
  task right after its shard (``status`` included) is on disk. It holds what only the task knows: the
  source item ids per period and per-modality facts such as the CDL year.
- ``<name>.index.parquet`` — the merged index, written at the end of every build and by
  ``olmoearth-data index``. Status, presence and reasons are read from the store itself, so the index
  cannot disagree with the arrays; fragments contribute the item ids and facts.

Columns follow stac-geoparquet's naming where one applies: ``id``, ``geometry`` (tile outline, lon/lat
WKB, EPSG:4326), ``datetime`` (centre date), ``start_datetime`` / ``end_datetime`` (the 12-period span,
end exclusive), all UTC timestamps. Then ``sample`` (row in the cube), ``tile_id``, ``epsg``,
``status`` / ``status_reason``, ``split`` (``train`` / ``validation`` / ``test`` by 40.96 km cell,
:mod:`olmoearth_data.splits`), and per modality ``<m>:present`` (present periods, int), ``<m>:reason``
(list of :class:`MissingReason` codes, one per period), ``<m>:item_ids`` (per period, the source item
ids in merge order) and ``<m>:<fact>`` for every ``ModalityResult.extra`` key (e.g. ``cdl:cdl_year``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from olmoearth_data.cube.layout import open_layout
from olmoearth_data.grid import Tile
from olmoearth_data.modalities import registry_from_dict
from olmoearth_data.results import SampleResult
from olmoearth_data.splits import assign_splits


def _stem(corpus: Path | str) -> Path:
    path = Path(corpus)
    return path.with_suffix("") if path.suffix == ".zarr" else path


def index_path(corpus: Path | str) -> Path:
    """Where a build writes the merged index of ``corpus``: ``data/x.zarr`` → ``data/x.index.parquet``."""
    return _stem(corpus).with_name(_stem(corpus).name + ".index.parquet")


def fragments_dir(corpus: Path | str) -> Path:
    """The folder of per-shard index fragments of ``corpus``: ``data/x.zarr`` → ``data/x.index/``."""
    return _stem(corpus).with_name(_stem(corpus).name + ".index")


def _atomic_write_parquet(df: pd.DataFrame, path: Path) -> None:
    # Written beside the target and renamed: a build killed mid-write leaves no truncated file behind.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_shard_fragment(
    *,
    corpus: Path | str,
    shard: int,
    results: Sequence[SampleResult],
    modalities: Sequence[str] | None = None,
) -> Path:
    """Write the fragment of one built shard: per sample, each modality's item ids and extra facts.

    Columns: ``sample`` (int64), ``<m>:item_ids`` (list of per-period lists of str), ``<m>:<fact>``;
    ``sample`` first, the rest sorted. ``modalities``: the modalities this build of the shard
    materialised (None: all of the results'); the columns of the others are kept from the shard's
    existing fragment, and those of ``modalities`` a sample has no result for (it stopped pending)
    are cleared.
    """
    path = fragments_dir(corpus) / f"shard-{shard:05d}.parquet"
    old: dict[int, dict[str, object]] = {}
    if modalities is not None and path.exists():
        for row in pd.read_parquet(path).to_dict(orient="records"):
            old[int(row["sample"])] = {k: v for k, v in row.items() if _present(v)}
    rebuilt = set(modalities) if modalities is not None else None
    rows = []
    for r in results:
        row = old.get(r.index, {}) if rebuilt is not None else {}
        row = {k: v for k, v in row.items() if rebuilt is None or k.split(":", 1)[0] not in rebuilt}
        row["sample"] = r.index
        for name, m in r.modalities.items():
            row[f"{name}:item_ids"] = [list(ids) for ids in m.item_ids]
            for key, value in m.extra.items():
                row[f"{name}:{key}"] = value
        rows.append(row)
    df = pd.DataFrame(rows)
    df = df[["sample", *sorted(c for c in df.columns if c != "sample")]]
    _atomic_write_parquet(df, path)
    return path


def _present(value: object) -> bool:
    """Whether a fragment cell read back holds a value (not a missing NaN/None)."""
    if value is None:
        return False
    return not (isinstance(value, float) and np.isnan(value))


def _read_fragments(corpus: Path | str) -> pd.DataFrame | None:
    paths = sorted(fragments_dir(corpus).glob("shard-*.parquet"))
    if not paths:
        return None
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True).drop_duplicates("sample")


def _utc(days: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(days.astype("datetime64[D]")).tz_localize("UTC")


def build_index(*, corpus: Path | str):
    """The sample index of ``corpus`` as a GeoDataFrame (one row per sample, CRS EPSG:4326)."""
    import geopandas as gpd

    _layout, meta = open_layout(corpus)
    specs = registry_from_dict(meta["modalities"])
    group = zarr.open_group(str(corpus), mode="r")
    tile_ids = [str(t) for t in group["tile_id"][:]]
    epoch = np.datetime64("1970-01-01", "D")
    # Dates are stored as int32 days since the epoch (xarray's CF encoding, layout.py).
    centre = epoch + group["centre_date"][:].astype("timedelta64[D]")
    starts = epoch + group["period_start"][:].astype("timedelta64[D]")
    ends = epoch + group["period_end"][:].astype("timedelta64[D]")
    df = pd.DataFrame(
        {
            "id": [f"{t}_{c}" for t, c in zip(tile_ids, centre.astype(str), strict=True)],
            "sample": np.arange(len(tile_ids), dtype=np.int64),
            "tile_id": tile_ids,
            "epsg": group["epsg"][:].astype(np.int32),
            "datetime": _utc(centre),
            "start_datetime": _utc(starts.min(axis=1)),
            "end_datetime": _utc(ends.max(axis=1)),
            "status": group["status"][:].astype(np.int8),
            "status_reason": [str(s) for s in group["status_reason"][:]],
            # spatially disjoint train/validation/test by 40.96 km cell (olmoearth_data.splits)
            "split": assign_splits(tile_ids),
        }
    )
    for spec in specs:
        present = group[f"{spec.name}/present"][:].reshape(len(df), -1)
        reason = group[f"{spec.name}/reason"][:].reshape(len(df), -1)
        df[f"{spec.name}:present"] = present.sum(axis=1).astype(np.int16)
        df[f"{spec.name}:reason"] = [list(map(int, r)) for r in reason]
    fragments = _read_fragments(corpus)
    if fragments is not None:
        df = df.merge(fragments, on="sample", how="left")
    geometry = [Tile.from_id(t).polygon_lonlat() for t in tile_ids]
    return gpd.GeoDataFrame(df, geometry=geometry, crs="EPSG:4326")


def write_index(*, corpus: Path | str, out: Path | str | None = None) -> Path:
    """Build the index of ``corpus`` and write it as GeoParquet to ``out`` (default :func:`index_path`)."""
    out = Path(out) if out is not None else index_path(corpus)
    gdf = build_index(corpus=corpus)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    gdf.to_parquet(tmp, index=False)
    os.replace(tmp, out)
    return out
