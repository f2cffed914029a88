"""Footprint indexes of the maps that have no STAC API: a GeoJSON FeatureCollection per source.

WRI/Meta canopy height (AWS Open Data) and ESA WorldCereal 2021 (Zenodo) publish files plus a GeoJSON
index of their footprints, not STAC records. A :class:`TileIndexRef` says where an index lives and the
base URL its features' *relative* ``href``s resolve against; :func:`fetch_index` downloads one (with
the run's retry policy, cached per process: one index serves every tile of a build) and
:func:`index_items` turns the features intersecting a tile into pystac Items built on the fly, so the
maps go through the same odc-stac read path as the STAC sources.

Feature properties understood (the real indexes' and the twin's layouts):

* ``{"tile": quadkey, "href": path}`` — one file per feature (canopy height), asset key = the
  source's single asset;
* ``{"aez_id": id, "hrefs": {product: path}}`` — one file per product (WorldCereal), asset key =
  the product's band name (:func:`product_band`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import pystac
import requests
import shapely.geometry
from requests.adapters import HTTPAdapter

from olmoearth_data.grid import Tile
from olmoearth_data.stac.retry import RetryPolicy


@dataclass(frozen=True)
class TileIndexRef:
    """Where a GeoJSON footprint index is and what its relative hrefs are relative to.

    Attributes:
        url: the index document (http(s)); features' geometries are lon/lat (EPSG:4326).
        base: URL the features' relative hrefs resolve against (ends with ``/``); absolute hrefs are
            kept as they are.
    """

    url: str
    base: str

    def resolve(self, href: str) -> str:
        """An absolute URL for a feature's ``href``."""
        return urljoin(self.base if self.base.endswith("/") else self.base + "/", href)


#: Real hosts, by source collection name (``SourceSpec.collection``). WRI/Meta canopy height: the AWS
#: Open Data bucket ``s3://dataforgood-fb-data/forests/v1/alsgedi_global_v6_float/`` over https.
#: WorldCereal 2021: Zenodo record 7875105 publishes one zip per product, which GDAL cannot range-read
#: per zone, so the default expects the zips unpacked under the record's URL with the layout
#: ``2021/<aez>/<aez>_<product>_classification.tif`` and an ``aez_index.geojson`` (the twin's layout);
#: point ``CatalogConfig.tile_indexes["worldcereal-2021"]`` at such a mirror.
DEFAULT_TILE_INDEXES: dict[str, TileIndexRef] = {
    "wri-canopy-height": TileIndexRef(
        url="https://dataforgood-fb-data.s3.amazonaws.com/forests/v1/alsgedi_global_v6_float/tiles.geojson",
        base="https://dataforgood-fb-data.s3.amazonaws.com/forests/",
    ),
    "worldcereal-2021": TileIndexRef(
        url="https://zenodo.org/records/7875105/files/2021/aez_index.geojson",
        base="https://zenodo.org/records/7875105/files/",
    ),
}

_CACHE: dict[str, dict[str, Any]] = {}
_LOCK = threading.Lock()


def fetch_index(*, ref: TileIndexRef, retry: RetryPolicy) -> dict[str, Any]:
    """The index document (a GeoJSON FeatureCollection), fetched once per process per URL.

    Connection errors and 429/5xx answers are retried with ``retry``'s backoff; each request times out
    after ``retry.timeout_s`` seconds, so an unreachable host fails in bounded time.
    """
    with _LOCK:
        cached = _CACHE.get(ref.url)
    if cached is not None:
        return cached
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=retry.urllib3_retry()))
        session.mount("https://", HTTPAdapter(max_retries=retry.urllib3_retry()))
        response = session.get(ref.url, timeout=retry.timeout_s)
        response.raise_for_status()
        doc = response.json()
    if doc.get("type") != "FeatureCollection":
        raise ValueError(f"tile index {ref.url} is not a GeoJSON FeatureCollection")
    with _LOCK:
        _CACHE[ref.url] = doc
    return doc


def product_band(product: str) -> str:
    """The band name of a WorldCereal product as the files spell it: ``tc-maize-main_irrigation`` →
    ``tc-maize-main-irrigation-classification`` (the files' ``_<product>_classification.tif`` suffix)."""
    name = product.lower().replace("_", "-")
    return name if name.endswith("-classification") else f"{name}-classification"


def _feature_id(props: Mapping[str, Any], number: int) -> str:
    for key in ("tile", "aez_id", "id"):
        if key in props:
            return str(props[key])
    return f"feature-{number}"


def index_items(
    *, doc: Mapping[str, Any], ref: TileIndexRef, tile: Tile, collection: str, single_asset: str
) -> list[pystac.Item]:
    """Items for the index features whose footprint intersects ``tile`` (lon/lat test), sorted by id.

    ``single_asset`` names the asset of a feature with one ``href``; a feature with ``hrefs`` gets one
    asset per key. Items carry no ``proj:`` metadata: odc-stac then reads each file's CRS/transform
    itself, which these sources need (canopy height EPSG:3857, WorldCereal EPSG:4326).
    """
    area = tile.polygon_lonlat()
    items = []
    for number, feature in enumerate(doc.get("features", [])):
        geometry = feature.get("geometry")
        if not geometry or not shapely.geometry.shape(geometry).intersects(area):
            continue
        props = feature.get("properties") or {}
        if "hrefs" in props:
            hrefs = {product_band(str(k)): str(v) for k, v in props["hrefs"].items()}
        elif "href" in props:
            hrefs = {single_asset: str(props["href"])}
        else:
            raise ValueError(f"tile index {ref.url}: feature {number} has neither 'href' nor 'hrefs'")
        item = pystac.Item(
            id=_feature_id(props, number),
            geometry=geometry,
            bbox=list(shapely.geometry.shape(geometry).bounds),
            datetime=None,
            properties={"start_datetime": "2000-01-01T00:00:00Z", "end_datetime": "2100-01-01T00:00:00Z"},
            collection=collection,
        )
        for key, href in hrefs.items():
            item.add_asset(
                key, pystac.Asset(href=ref.resolve(href), media_type=pystac.MediaType.COG, roles=["data"])
            )
        items.append(item)
    return sorted(items, key=lambda i: i.id)
