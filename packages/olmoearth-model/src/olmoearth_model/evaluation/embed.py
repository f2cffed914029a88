"""Per-token embeddings of corpus samples as a georeferenced Zarr store, for analysts.

One Zarr group per sample, named by the sample id (``<tile id>_<centre date>``, as the sample index's
``id``), each an xarray Dataset that ``xr.open_zarr(store, group=id, decode_coords="all")`` opens (``"all"``
decodes the CF grid mapping into the ``spatial_ref`` coordinate ``.rio.crs`` reads):

- ``embedding`` float32 ``[dim, y, x]``: the frozen encoder's per-token embedding (mean over the
  encoded periods and bandsets), NaN where no observation was encoded;
- ``x`` / ``y``: token centres in the sample's UTM CRS (metres), recorded with rioxarray
  (``.rio.crs``, ``.rio.transform()``), north-up;
- ``period_start`` / ``period_end`` ``[period]``: the monthly periods encoded;
- attributes: ``modalities`` (observation inputs) with their ``bands``, ``patch_size``, ``source``
  (release or checkpoint), ``tile_id``, ``sample`` (corpus row).

The root lists the groups in its ``samples`` attribute.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rioxarray  # noqa: F401 — registers the ``.rio`` accessor
import torch
import xarray as xr
import zarr

from olmoearth_data.grid import Tile
from olmoearth_data.missing import SampleStatus
from olmoearth_model.evaluation.encode import embed_tile, open_encodable
from olmoearth_model.nn.encoder import Encoder


def sample_ids(corpus: Path | str) -> list[str]:
    """``<tile id>_<centre date>`` of every corpus row (the sample index's ``id``)."""
    group = zarr.open_group(str(corpus), mode="r")
    epoch = np.datetime64("1970-01-01", "D")
    centre = (epoch + group["centre_date"][:].astype("timedelta64[D]")).astype(str)
    return [f"{t}_{c}" for t, c in zip(group["tile_id"][:], centre, strict=True)]


def resolve_samples(corpus: Path | str, wanted: Sequence[str] | None) -> list[int]:
    """Corpus rows of ``wanted`` (row numbers, sample ids or tile ids); every complete row if None."""
    group = zarr.open_group(str(corpus), mode="r")
    complete = np.asarray(group["status"][:]) == SampleStatus.COMPLETE
    if not wanted:
        return np.flatnonzero(complete).tolist()
    ids, tiles = sample_ids(corpus), [str(t) for t in group["tile_id"][:]]
    rows = []
    for w in wanted:
        if w.isdigit() and int(w) < len(ids):
            r = int(w)
        elif w in ids:
            r = ids.index(w)
        elif w in tiles:
            r = tiles.index(w)
        else:
            raise ValueError(f"corpus {corpus} has no sample {w!r} (give a row, a sample id or a tile id)")
        if not complete[r]:
            raise ValueError(f"sample {w!r} of corpus {corpus} is not complete (dropped or pending)")
        rows.append(r)
    return rows


def embedding_dataset(
    *, encoder: Encoder, corpus: Path | str, row: int, patch_size: int, crop_tokens: int, timesteps: int,
    device: torch.device, source: str,
) -> xr.Dataset:  # fmt: skip
    """The georeferenced embedding Dataset of corpus row ``row`` (module docstring)."""
    reader = open_encodable(encoder=encoder, corpus=str(corpus))
    emb = embed_tile(encoder=encoder, reader=reader, row=row, patch_size=patch_size,
                     crop_tokens=crop_tokens, timesteps=timesteps, device=device)  # fmt: skip
    tile = Tile.from_id(str(reader.group["tile_id"][row]))
    xmin, _, _, ymax = tile.bounds
    size = 10.0 * patch_size  # metres per token
    h = emb.tokens.shape[0]
    x = xmin + size * (np.arange(h) + 0.5)
    y = ymax - size * (np.arange(h) + 0.5)
    values = np.where(emb.valid[..., None], emb.tokens, np.nan).transpose(2, 0, 1).astype(np.float32)
    epoch = np.datetime64("1970-01-01", "D")
    starts = epoch + reader.group["period_start"][row].astype("timedelta64[D]")
    ends = epoch + reader.group["period_end"][row].astype("timedelta64[D]")
    periods = list(emb.periods)
    ds = xr.Dataset(
        {
            "embedding": (("dim", "y", "x"), values),
            "period_start": (("period",), starts[periods].astype("datetime64[ns]")),
            "period_end": (("period",), ends[periods].astype("datetime64[ns]")),
        },
        coords={"dim": np.arange(values.shape[0]), "y": y, "x": x, "period": periods},
        attrs={
            "tile_id": tile.id,
            "sample": int(row),
            "patch_size": int(patch_size),
            "token_size_m": size,
            "modalities": list(emb.modalities),
            "bands": json.dumps({s.name: list(s.bands) for s in reader.specs}),
            "source": source,
            "pooling": "mean over encoded periods and bandsets; NaN: nothing encoded",
        },
    )
    ds["embedding"].attrs["long_name"] = "OlmoEarth per-token embedding"
    return ds.rio.write_crs(f"EPSG:{tile.epsg}").rio.set_spatial_dims(x_dim="x", y_dim="y")


def write_embeddings(
    *, encoder: Encoder, corpus: Path | str, rows: Sequence[int], out: Path | str, patch_size: int,
    crop_tokens: int, timesteps: int, device: torch.device, source: str,
) -> Path:  # fmt: skip
    """Write the groups of ``rows`` to a new store ``out`` (built beside it, renamed when complete)."""
    out = Path(out)
    if out.exists():
        raise ValueError(f"{out} exists; choose another --out or remove it")
    ids = sample_ids(corpus)
    datasets = {ids[r]: embedding_dataset(encoder=encoder, corpus=corpus, row=r, patch_size=patch_size,
                                          crop_tokens=crop_tokens, timesteps=timesteps, device=device,
                                          source=source) for r in rows}  # fmt: skip
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        root = zarr.open_group(str(tmp), mode="w")
        root.attrs["samples"] = list(datasets)
        for name, ds in datasets.items():
            ds.to_zarr(str(tmp), group=name, mode="w", consolidated=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
