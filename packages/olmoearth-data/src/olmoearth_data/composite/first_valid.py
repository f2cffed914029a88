"""Load items into a tile's pixel grid with odc-stac and merge them per pixel, first valid wins.

A pixel of an item is *valid* when any band of the bandset differs from nodata (for float data:
is not NaN). The output starts empty (all nodata) and each item, in order, fills only pixels that
are still empty — the reference's FIRST_VALID compositing (data spec §4.2 step 4).

Optional bands fill independently. A source may list assets an item can lack (Landsat L2SR products
have no thermal ``lwir11``: on a real ``landsat-c2-l2`` result page 8 items in 10 are L2SR). Merged with
the rest, an L2SR item that filled a pixel left that pixel's B10 empty for good, even when a later
L2SP item of the period had it. So the *required* bands decide validity and fill first-valid as above,
and each optional band keeps its own "filled" mask: it takes, per pixel, the first item in the same
order that has the asset and a valid value there — then, once the items are used up, the
``fallback_items`` (the period's other items, in search order), read for the optional bands only.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pystac
from odc.geo.geobox import GeoBox

from olmoearth_data.composite.item_read import load_item, read_item
from olmoearth_data.stac.retry import RetryPolicy

__all__ = ["MergeResult", "ReadAhead", "first_valid", "load_item", "valid_mask"]

log = logging.getLogger(__name__)


def valid_mask(array: np.ndarray, *, nodata: float | int | None) -> np.ndarray:
    """Pixels ``[H, W]`` of a ``[C, H, W]`` stack where any band holds data."""
    if nodata is None:
        return np.ones(array.shape[1:], dtype=bool)
    if isinstance(nodata, float) and np.isnan(nodata):
        return ~np.all(np.isnan(array), axis=0)
    return ~np.all(array == nodata, axis=0)


@dataclass
class MergeResult:
    """A first-valid composite and which items contributed."""

    data: np.ndarray  # [C, H, W]
    used_item_ids: list[str]
    failed_item_ids: list[str]

    @property
    def empty(self) -> bool:
        return not self.used_item_ids


class _Merge:
    """The running composite: required bands share one filled mask, each optional band has its own."""

    def __init__(
        self, *, assets: Sequence[str], optional: Sequence[str], shape: tuple[int, ...], fill, dtype
    ):
        self.assets = list(assets)
        opt = [i for i, a in enumerate(assets) if a in set(optional)]
        # A bandset of optional bands only: each band is its own group.
        self.required = [i for i in range(len(assets)) if i not in opt] if len(opt) < len(assets) else []
        self.optional = opt if self.required else list(range(len(assets)))
        self.nodata = fill
        self.out = np.full((len(assets), *shape), fill, dtype=dtype)
        self.filled = np.zeros(shape, dtype=bool) if self.required else np.ones(shape, dtype=bool)
        self.opt_filled = {i: np.zeros(shape, dtype=bool) for i in self.optional}
        self.used: list[str] = []

    def done(self) -> bool:
        return bool(self.filled.all()) and all(m.all() for m in self.opt_filled.values())

    def optional_open(self, item: pystac.Item) -> list[int]:
        """Optional bands still unfilled somewhere that ``item`` carries."""
        return [i for i, m in self.opt_filled.items() if self.assets[i] in item.assets and not m.all()]

    def add(self, item: pystac.Item, data: np.ndarray, *, required: bool) -> None:
        took = False
        if required and self.required:
            take = valid_mask(data[self.required], nodata=self.nodata) & ~self.filled
            if take.any():
                for i in self.required:
                    self.out[i][take] = data[i][take]
                self.filled |= take
                took = True
        for i in self.optional_open(item):
            take = valid_mask(data[i : i + 1], nodata=self.nodata) & ~self.opt_filled[i]
            if take.any():
                self.out[i][take] = data[i][take]
                self.opt_filled[i] |= take
                took = True
        if took and item.id not in self.used:
            self.used.append(item.id)


@dataclass(frozen=True)
class ReadAhead:
    """How :func:`first_valid` reads items ahead: ``run(tasks)`` runs tasks side by side and returns
    their results in order (:meth:`~olmoearth_data.materialise.context.MaterialiseContext.run`);
    ``width`` items are read per round."""

    run: Callable[[list[Callable[[], object]]], list[object]]
    width: int


def _reads(
    items: Sequence[pystac.Item], *, read: Callable[[pystac.Item], np.ndarray | None], ahead: ReadAhead | None
) -> Iterator[tuple[pystac.Item, np.ndarray | None]]:
    """``(item, read(item))`` in order; with ``ahead``, ``ahead.width`` reads at a time. A read's exception
    is raised when its item's turn comes (never for an item the caller stopped before)."""
    if ahead is None or ahead.width <= 1 or len(items) <= 1:
        for item in items:
            yield item, read(item)
        return

    def attempt(item: pystac.Item) -> tuple[np.ndarray | None, BaseException | None]:
        try:
            return read(item), None
        except Exception as exc:  # raised in order by the consumer, or dropped past the early stop
            return None, exc

    for start in range(0, len(items), ahead.width):
        batch = items[start : start + ahead.width]
        outcomes = ahead.run([functools.partial(attempt, item) for item in batch])
        for item, (data, error) in zip(batch, outcomes, strict=True):  # type: ignore[misc]
            if error is not None:
                raise error
            yield item, data


def first_valid(
    items: Sequence[pystac.Item],
    *,
    assets: Sequence[str],
    geobox: GeoBox,
    dtype: str,
    nodata: float | int,
    resampling: str,
    sign: Callable[[str], str],
    transform_item: Callable[[pystac.Item, np.ndarray], np.ndarray] | None = None,
    read_nodata: float | int | None = None,
    retry: RetryPolicy | None = None,
    optional_assets: Sequence[str] = (),
    fallback_items: Sequence[pystac.Item] = (),
    read_ahead: ReadAhead | None = None,
) -> MergeResult:
    """Per-pixel first-valid merge of ``items`` (already in priority order) into ``geobox``.

    ``transform_item(item, data)`` adjusts one item's pixels before merging (e.g. Sentinel-2
    harmonisation). ``read_nodata`` is the files' own nodata when it differs from the output's
    ``nodata`` (Sentinel-1: −32768 in the files, NaN stored): reading with it keeps nodata out of
    the resampling kernel, then those pixels become ``nodata``. ``optional_assets`` (those of
    ``assets`` an item may lack) fill independently, from ``items`` and then from ``fallback_items``
    (see the module docstring). Reads go through :func:`~olmoearth_data.composite.item_read.read_item`:
    an item with a bad file is skipped at once (and listed in ``failed_item_ids``), a network failure
    is retried with ``retry`` (None: tried once) and, when it persists, raises
    :class:`~olmoearth_data.outages.SourceUnavailableError`. Stops early once every pixel is filled.

    ``read_ahead``: reads the next items side by side (``read_ahead.run(tasks)`` runs them, at most
    ``read_ahead.width`` at a time) while they are merged in order exactly as above: the same output,
    the same used and failed items; an item read past the early stop is only a wasted read (its failure,
    even an outage, is ignored, as the sequential path would never have read it).
    """
    merge = _Merge(assets=assets, optional=optional_assets, shape=geobox.shape, fill=nodata, dtype=dtype)
    failed: list[str] = []
    source_nodata = nodata if read_nodata is None else read_nodata
    load_args = dict(assets=assets, geobox=geobox, dtype=dtype, nodata=source_nodata, resampling=resampling)

    def read(item: pystac.Item, wanted: Sequence[str]) -> np.ndarray | None:
        data = read_item(item, sign=sign, retry=retry, load_args={**load_args, "assets": list(wanted)})
        if data is None:  # a bad file: the caller lists the item as failed when it consumes the read
            return None
        if len(wanted) < len(assets):  # an optional-only read: back into the bandset's band order
            full = np.full((len(assets), *geobox.shape), source_nodata, dtype=dtype)
            full[[list(assets).index(a) for a in wanted]] = data
            data = full
        if read_nodata is not None:
            data = np.where(data == read_nodata, np.asarray(nodata, dtype=data.dtype), data)
        return data if transform_item is None else transform_item(item, data)

    for item, data in _reads(items, read=lambda item: read(item, assets), ahead=read_ahead):
        if data is None:
            failed.append(item.id)
        else:
            merge.add(item, data, required=True)
        if merge.done():
            break
    for item in fallback_items:
        if merge.done():
            break
        open_bands = merge.optional_open(item)
        if not open_bands or item.id in failed:
            continue
        wanted = assets if transform_item is not None else [assets[i] for i in open_bands]
        data = read(item, wanted)
        if data is None:
            failed.append(item.id)
        else:
            merge.add(item, data, required=False)
    return MergeResult(merge.out, merge.used, failed)
