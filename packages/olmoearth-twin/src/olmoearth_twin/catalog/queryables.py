"""A collection's queryables document (JSON Schema), which tells pgstac how to read each property.

PC's pgstac has queryables per collection; pgstac uses them to pick the SQL cast of a property in
filters and ``sortby`` (``to_float`` for ``"type": "number"``, ``to_int`` for integers, text
otherwise). Without one, ``eo:cloud_cover`` is compared and sorted as *text* ("7.1" > "30"), which is
not what PC does. The real sentinel-2-l2a document is not among the recorded fixtures, so it is derived
from the real item's properties in the style of PC's recorded ``landsat-c2-l2`` queryables (same
``$id``/``title``/``$schema``, the eo ``$ref`` for cloud cover, ``proj:epsg`` as integer-or-null),
adding ``"type": "number"`` next to that ``$ref`` so pgstac casts it to float.
"""

from __future__ import annotations

from typing import Any

_EO_CLOUD_COVER_REF = (
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json#/definitions/fields/properties/eo:cloud_cover"
)
_FIXED: dict[str, dict[str, Any]] = {
    "id": {
        "$ref": "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json#/definitions/core/allOf/2/properties/id",
        "title": "Item ID",
        "description": "Item identifier",
    },
    "datetime": {
        "type": "string",
        "title": "Acquired",
        "format": "date-time",
        "pattern": "(\\+00:00|Z)$",
        "description": "Datetime",
    },
    "geometry": {
        "$ref": "https://geojson.org/schema/Feature.json",
        "title": "Item Geometry",
        "description": "Item Geometry",
    },
    "eo:cloud_cover": {"$ref": _EO_CLOUD_COVER_REF, "type": "number", "minimum": 0, "maximum": 100},
    "proj:epsg": {"type": ["integer", "null"], "title": "EPSG code"},
}


def _schema_for(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, list):
        return {"type": "array"}
    if isinstance(value, str) and value.endswith("Z") and value[4:5] == "-" and "T" in value:
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}


def queryables_for(*, collection_id: str, item: dict[str, Any], stac_root: str) -> dict[str, Any]:
    """Queryables of ``collection_id`` with one entry per property of the real ``item``.

    Args:
        collection_id: e.g. ``sentinel-2-l2a``.
        item: a real item of the collection (its property JSON types become the schema types).
        stac_root: API root for ``$id``, e.g. ``https://planetarycomputer.microsoft.com/api/stac/v1``.
    """
    properties = {name: _schema_for(value) for name, value in item["properties"].items()}
    properties.update({k: v for k, v in _FIXED.items() if k in properties or k in ("id", "geometry")})
    return {
        "$id": f"{stac_root}/collections/{collection_id}/queryables",
        "type": "object",
        "title": "STAC Queryables.",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "properties": dict(sorted(properties.items())),
    }
