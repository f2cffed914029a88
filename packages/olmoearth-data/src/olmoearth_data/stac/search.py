"""Per-sample STAC searches: one search per period, de-duplicated, ordered, cached on disk.

The cache stores *unsigned* item dicts (never signed URLs: tokens expire), one JSON file per
(collection, sample), written atomically once all periods are searched, so a rerun of a crashed
build does not hit the API again for samples it already searched.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac
import pystac_client
import shapely

from olmoearth_data.grid import Tile
from olmoearth_data.periods import Period
from olmoearth_data.sources import SourceSpec

log = logging.getLogger(__name__)

#: Page size of searches. Planetary Computer defaults to 250; an explicit value keeps paging predictable.
PAGE_SIZE = 100


@dataclass(frozen=True)
class PeriodItems:
    """The ordered, de-duplicated items of one period (unsigned dicts as the API returned them)."""

    period: Period
    items: tuple[dict[str, Any], ...]

    def pystac_items(self) -> list[pystac.Item]:
        return [pystac.Item.from_dict(d, preserve_dict=True) for d in self.items]


def order_items(items: Sequence[dict[str, Any]], *, sort_keys: Sequence[str]) -> list[dict[str, Any]]:
    """De-duplicate by id (first wins) and sort by ``sort_keys`` ascending, ties by id.

    A missing sort value sorts last (the reference treated missing cloud cover as 100 %).
    """
    unique: dict[str, dict[str, Any]] = {}
    for item in items:
        unique.setdefault(item["id"], item)

    def key(item: dict[str, Any]) -> tuple[Any, ...]:
        props = item.get("properties", {})
        values = []
        for k in sort_keys:
            v = props.get(k)
            values.append((1, "") if v is None else (0, v))
        return (*values, item["id"])

    return sorted(unique.values(), key=key)


def has_assets(item: dict[str, Any], *, source: SourceSpec) -> bool:
    """Whether the item carries every asset the source reads (its ``optional_assets`` excepted)."""
    assets = item.get("assets", {})
    return all(b.asset in assets for b in source.bands if b.asset not in source.optional_assets)


def search_period(
    *, client: pystac_client.Client, source: SourceSpec, tile: Tile, period: Period
) -> PeriodItems:
    """Search one period for items intersecting the tile; returns them ordered for compositing.

    ``intersects`` is the tile outline in lon/lat; ``datetime`` is the closed interval equal to the
    half-open period (so an item on a period boundary belongs to exactly one period).
    """
    search = client.search(
        collections=[source.collection],
        intersects=shapely.geometry.mapping(tile.polygon_lonlat()),
        datetime=period.stac_datetime(),
        query=source.query or None,
        filter=source.filter,
        filter_lang="cql2-json" if source.filter else None,
        limit=PAGE_SIZE,
    )
    found = list(search.items_as_dicts())
    usable = [d for d in found if has_assets(d, source=source)]
    if len(usable) < len(found):
        log.info("%s %s: %d items lack required assets", source.collection, tile.id, len(found) - len(usable))
    # Items stamped on a period boundary can match by datetime range overlap (start/end items); keep
    # only those whose datetime lies in the half-open period when they have one.
    kept = [d for d in usable if _in_period(d, period)]
    return PeriodItems(period, tuple(order_items(kept, sort_keys=source.sort_keys)))


def _in_period(item: dict[str, Any], period: Period) -> bool:
    when = item.get("properties", {}).get("datetime")
    if when is None:
        return True
    parsed = pystac.utils.str_to_datetime(when)
    return period.contains(parsed)


class SearchCache:
    """Per-sample search results on disk: ``<root>/<collection>/<tile id>__<centre>.json``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, *, source: SourceSpec, tile: Tile, key: str) -> Path:
        safe_tile = tile.id.replace(":", "-")
        return self.root / source.collection / f"{safe_tile}__{key}.json"

    @staticmethod
    def fingerprint(*, source: SourceSpec, stac_url: str, periods: Sequence[Period]) -> str:
        """What the cached answer depends on: catalogue, collection, query, sort, periods."""
        doc = {
            "url": stac_url,
            "collection": source.collection,
            "query": source.query,
            "filter": source.filter,
            "sort": list(source.sort_keys),
            "assets": [b.asset for b in source.bands],
            "optional": list(source.optional_assets),
            "periods": [[p.start.isoformat(), p.end.isoformat()] for p in periods],
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def load(self, *, source: SourceSpec, tile: Tile, key: str, fingerprint: str) -> list[PeriodItems] | None:
        path = self._path(source=source, tile=tile, key=key)
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("ignoring corrupt search cache %s", path)
            return None
        if doc.get("fingerprint") != fingerprint:
            return None
        return [
            PeriodItems(Period(_date(p["start"]), _date(p["end"])), tuple(p["items"])) for p in doc["periods"]
        ]

    def store(
        self, *, source: SourceSpec, tile: Tile, key: str, fingerprint: str, results: Sequence[PeriodItems]
    ) -> None:
        path = self._path(source=source, tile=tile, key=key)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "fingerprint": fingerprint,
            "periods": [
                {"start": r.period.start.isoformat(), "end": r.period.end.isoformat(), "items": list(r.items)}
                for r in results
            ],
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)


def _date(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def search_sample(
    *,
    client: pystac_client.Client,
    source: SourceSpec,
    tile: Tile,
    periods: Sequence[Period],
    stac_url: str,
    cache: SearchCache | None,
    run: Callable[[list[Callable[[], PeriodItems]]], list[PeriodItems]] | None = None,
) -> list[PeriodItems]:
    """Search every period of one sample, reusing the on-disk cache when its fingerprint matches.

    ``run(tasks)`` runs the per-period searches and returns their results in order (e.g. side by side:
    :meth:`~olmoearth_data.materialise.context.MaterialiseContext.run`); None: one after the other.
    """
    key = f"{periods[0].start.isoformat()}_{periods[-1].end.isoformat()}"
    fp = SearchCache.fingerprint(source=source, stac_url=stac_url, periods=periods)
    if cache is not None:
        cached = cache.load(source=source, tile=tile, key=key, fingerprint=fp)
        if cached is not None:
            return cached
    tasks = [
        functools.partial(search_period, client=client, source=source, tile=tile, period=p) for p in periods
    ]
    results = run(tasks) if run is not None else [task() for task in tasks]
    if cache is not None:
        cache.store(source=source, tile=tile, key=key, fingerprint=fp, results=results)
    return results
