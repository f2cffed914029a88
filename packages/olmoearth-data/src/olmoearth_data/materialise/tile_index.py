"""Tile-index maps (WRI/Meta canopy height, ESA WorldCereal 2021): one mosaic of the files under a tile.

The footprint index (:mod:`olmoearth_data.stac.tile_index`) gives the files intersecting the tile as
pystac Items built on the fly. Then:

* canopy height: the 1.19 m EPSG:3857 quadkey tiles are first mosaicked at their native resolution
  over the tile's footprint (rasterio ``merge``), then averaged to the 10 m UTM grid in one warp (GDAL
  ``average`` ignores the 255 nodata pixels). Not odc-stac's per-item load + first-valid merge: a
  10 m pixel straddling two quadkey tiles would then average only the first tile's part (seen in the
  twin: up to 32 m off along seams). uint8 metres (rounded), 255 where no tile has data;
* WorldCereal: the STAC sources' path (odc-stac nearest into the tile grid); *every* zone covering
  the tile is merged, first valid per pixel: zones overlap with nodata on their far sides, and the
  reference's pick of one zone lost the other's data (data spec §9.1 pain point 9). After merging,
  values > 100 (254 "not cropland", artefacts) become 0 as in the reference; 255 stays where no zone
  covers the pixel.

Failures: the index document that cannot be fetched past the retries (down, 429/5xx) and a file read
whose network failure persists raise :class:`~olmoearth_data.outages.SourceUnavailableError` (the sample
stays pending); a missing (404) or undecodable file, or a feature href that is not http(s)
(:mod:`~olmoearth_data.composite.hrefs`), costs that file only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pystac
import rasterio
import rasterio.merge
from affine import Affine
from rasterio.warp import Resampling, reproject, transform_bounds

from olmoearth_data.composite.first_valid import ReadAhead, valid_mask
from olmoearth_data.composite.gdal_cache import clear_remote_cache
from olmoearth_data.composite.hrefs import RefusedHrefError, check_href
from olmoearth_data.composite.read_errors import gdal_retry_options, is_transient
from olmoearth_data.cube.layout import empty_arrays, nodata_fill
from olmoearth_data.grid import Tile
from olmoearth_data.materialise.bandsets import composite_bandsets
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.outages import SourceUnavailableError, describe_failure, host_of_url, is_service_failure
from olmoearth_data.redact import public_url, redact_text
from olmoearth_data.results import ModalityResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import SourceSpec
from olmoearth_data.stac.retry import RetryPolicy
from olmoearth_data.stac.tile_index import TileIndexRef, fetch_index, index_items

log = logging.getLogger(__name__)

#: ``run(tasks)``: runs remote steps as read tasks, results in order (MaterialiseContext.run).
Run = Callable[[list[Callable[[], Any]]], list[Any]]


def _in_order(tasks: list[Callable[[], Any]]) -> list[Any]:
    return [task() for task in tasks]


#: The role of a tile-index host in outage reports.
ROLE = "tile index"


def _public(href: str) -> str:
    # The tile-index hosts are public (S3 Open Data, Zenodo): no SAS signing, the URL is read as is —
    # over http(s) only.
    return check_href(href)


def _fetch(ref: TileIndexRef, retry: RetryPolicy) -> dict:
    """The index document; :class:`SourceUnavailableError` when its host fails past the retries."""
    try:
        return fetch_index(ref=ref, retry=retry)
    except Exception as exc:
        if is_service_failure(exc):
            raise SourceUnavailableError(
                host=host_of_url(ref.url), role=ROLE, failure=describe_failure(exc)
            ) from None
        raise


def materialise_tile_index(
    *,
    sample: Sample,
    spec: ModalitySpec,
    source: SourceSpec,
    ref: TileIndexRef,
    retry: RetryPolicy,
    run: Run | None = None,
    read_ahead: ReadAhead | None = None,
) -> ModalityResult:
    """Mosaic one tile-index modality onto ``sample``'s tile grid.

    Returns arrays ``[1, C, H, W]`` per bandset in the modality's dtype (uint8; the tile's UTM CRS,
    north-up, 10 m → 256 × 256), nodata 255 where no file has data; ``present``/``reason`` of shape
    ``[1]`` (``OUTSIDE_COVERAGE`` when no index feature intersects the tile, ``READ_FAILED`` when every
    file failed, ``ALL_NODATA`` when read but empty); the contributing feature ids.

    ``run(tasks)`` runs the remote steps (the index fetch, each canopy file's open, the mosaic's pixel
    reads) as read tasks and returns their results in order (the worker's
    :meth:`~olmoearth_data.materialise.context.MaterialiseContext.run`; None: in order, here);
    ``read_ahead``: WorldCereal's zone files read side by side (same output).
    """
    run = run or _in_order
    (doc,) = run([lambda: _fetch(ref, retry)])
    single = source.asset_for(source.bands[0].band)
    items = index_items(doc=doc, ref=ref, tile=sample.tile, collection=source.collection, single_asset=single)
    fill = nodata_fill(spec)
    arrays = empty_arrays(spec, n_periods=1)
    result = ModalityResult(
        arrays=arrays,
        present=np.zeros(1, dtype=bool),
        reason=np.full(1, int(MissingReason.OUTSIDE_COVERAGE), dtype=np.uint8),
        item_ids=[[]],
    )
    if not items:
        return result
    failed: set[str] = set()
    if source.native_mosaic:
        bs = spec.bandsets[0]
        data, used, bad = canopy_mosaic(
            items=items, asset=single, tile=sample.tile, pixel_size_m=bs.pixel_size_m, retry=retry, run=run
        )
        arrays[bs.name][0, 0] = data
        result.item_ids[0].extend(used)
        failed.update(bad)
    if not source.native_mosaic:

        def mosaic() -> tuple[list[str], set[str]]:
            return composite_bandsets(arrays, 0, items, sample=sample, spec=spec, source=source, sign=_public,
                                      retry=retry, read_ahead=read_ahead)  # fmt: skip

        used, bad = mosaic() if read_ahead is not None else run([mosaic])[0]
        result.item_ids[0].extend(i for i in used if i not in result.item_ids[0])
        failed.update(bad)
    if any(valid_mask(arrays[bs.name][0], nodata=fill).any() for bs in spec.bandsets):
        result.present[0] = True
        result.reason[0] = MissingReason.PRESENT
    elif failed >= {i.id for i in items}:
        result.reason[0] = MissingReason.READ_FAILED
    else:
        result.reason[0] = MissingReason.ALL_NODATA
    return result


def _open_with_retry(href: str, *, retry: RetryPolicy) -> rasterio.DatasetReader | None:
    """``rasterio.open(href)`` retried with ``retry``'s backoff while the failure is the network's; None
    (logged) when the file is bad or its href refused (not retried: it would fail the same way);
    :class:`SourceUnavailableError` when every try failed on the network."""
    try:
        check_href(href)
    except RefusedHrefError as exc:
        log.warning("skipping %s: %s", public_url(href), exc)
        return None
    delays = retry.delays()
    for attempt in range(len(delays) + 1):
        try:
            with rasterio.Env(**gdal_retry_options(retry)):
                ds = rasterio.open(href)
                try:
                    ds.read(1, window=((0, 1), (0, 1)))  # touch the data: a truncated file fails here
                except rasterio.errors.RasterioError:
                    ds.close()
                    raise
            return ds
        except rasterio.errors.RasterioError as exc:
            transient = is_transient(exc)
            if transient and attempt < len(delays):
                log.info("retrying %s: open failed (%s)", public_url(href), redact_text(str(exc)))
                time.sleep(delays[attempt])
                clear_remote_cache(urls=[href])  # else GDAL may answer from a cached "missing file"
                continue
            if transient:
                raise SourceUnavailableError(
                    host=host_of_url(href), role=ROLE, failure=describe_failure(exc)
                ) from None
            log.warning(
                "skipping %s: open failed, bad file: not retried (%s)",
                public_url(href),
                redact_text(str(exc)),
            )
            return None
    return None


def canopy_mosaic(
    *,
    items: list[pystac.Item],
    asset: str,
    tile: Tile,
    pixel_size_m: float,
    retry: RetryPolicy,
    run: Run | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    """Canopy height on ``tile``'s grid: ``[H, W]`` uint8 metres (H = W = 2560 m / ``pixel_size_m``),
    255 where no file has data; also the ids of the items read and of those that failed.

    The files (any one CRS, here EPSG:3857) are mosaicked at native resolution over the tile's
    footprint plus a margin, first file first, then averaged onto the tile's UTM grid in one warp.
    ``run``: how the opens (one task per file) and the mosaic's pixel reads (one task) are run.
    """
    run = run or _in_order
    n = round(2560 / pixel_size_m)
    out = np.full((n, n), 255, dtype=np.uint8)

    def attempt(href: str) -> tuple[rasterio.DatasetReader | None, SourceUnavailableError | None]:
        try:
            return _open_with_retry(href, retry=retry), None
        except SourceUnavailableError as exc:
            return None, exc

    outcomes = run([functools.partial(attempt, item.assets[asset].href) for item in items])
    errors = [error for _, error in outcomes if error is not None]
    if errors:
        for ds, _ in outcomes:
            if ds is not None:
                ds.close()
        raise errors[0]
    opened = [(item.id, ds) for item, (ds, _) in zip(items, outcomes, strict=True)]
    good = [(i, ds) for i, ds in opened if ds is not None]
    failed = [i for i, ds in opened if ds is None]
    if not good:
        return out, [], failed
    try:
        src_crs = good[0][1].crs
        res = good[0][1].res
        left, bottom, right, top = transform_bounds(tile.crs, src_crs, *tile.bounds, densify_pts=21)
        margin = 4 * max(res)  # whole source pixels under the edge 10 m pixels
        # Snap to the files' pixel grid: merge would otherwise resample the mosaic by a sub-pixel shift.
        g = good[0][1].transform
        left = g.c + np.floor((left - margin - g.c) / res[0]) * res[0]
        top = g.f - np.floor((g.f - top - margin) / res[1]) * res[1]
        right = g.c + np.ceil((right + margin - g.c) / res[0]) * res[0]
        bottom = g.f - np.ceil((g.f - bottom + margin) / res[1]) * res[1]

        def read_mosaic() -> tuple[np.ndarray, Affine]:
            try:
                with rasterio.Env(**gdal_retry_options(retry)):  # the pixel reads retry like the opens
                    return rasterio.merge.merge(
                        [ds for _, ds in good], bounds=(left, bottom, right, top), res=res, nodata=255,
                        method="first",
                    )  # fmt: skip
            except rasterio.errors.RasterioError as exc:
                if not is_transient(exc):
                    raise
                host = host_of_url(items[0].assets[asset].href)
                raise SourceUnavailableError(host=host, role=ROLE, failure=describe_failure(exc)) from None

        ((mosaic, transform),) = run([read_mosaic])
    finally:
        for _, ds in good:
            ds.close()
    reproject(
        source=mosaic[0],
        destination=out,
        src_transform=transform,
        src_crs=src_crs,
        src_nodata=255,
        dst_transform=tile.transform(pixel_size_m=pixel_size_m),
        dst_crs=tile.crs,
        dst_nodata=255,
        resampling=Resampling.average,
    )
    return out, [i for i, _ in good], failed
