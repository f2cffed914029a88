"""Items made from a real PC item: same keys, roles, media types and JSON types, new values.

Every non-S2 generator starts from the recorded ``*.items-limit1.json`` item of its collection, so a
generated item can only differ from PC's in values, never in shape. The template's id appears in its
links and in the data-API asset hrefs (``tilejson``, ``rendered_preview``); those are replaced too.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from shapely.geometry import shape


def clone_item(
    *,
    template: dict[str, Any],
    item_id: str,
    geometry: dict[str, Any],
    properties: dict[str, Any],
    hrefs: dict[str, str],
    drop_assets: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of ``template`` with a new id, geometry (and bbox), properties and asset hrefs.

    Args:
        template: a real PC item (not modified).
        item_id: the new id; replaces the template id everywhere in links and asset hrefs.
        geometry: GeoJSON geometry (lon/lat).
        properties: values to set; keys must already exist in the template (raises otherwise, so a
            generator cannot add a property PC does not have). A value's JSON type must match too.
        hrefs: asset key → new href (assets not named keep the template href after ``replace``).
        drop_assets: asset keys to remove (e.g. thermal assets of an L2SR item).
        replace: extra literal substitutions applied to the serialised links/assets (old → new).
    """
    item = copy.deepcopy(template)
    unknown = [k for k in properties if k not in item["properties"]]
    if unknown:
        raise KeyError(f"{template['collection']}: properties {unknown} are not in the real item")
    for key, value in properties.items():
        old = item["properties"][key]
        if old is not None and value is not None and type(old) is not type(value):
            raise TypeError(f"{key}: {type(value).__name__} where PC has {type(old).__name__}")
    subs = {template["id"]: item_id, **(replace or {})}
    links_assets = json.dumps({"links": item["links"], "assets": item["assets"]})
    for old, new in subs.items():
        links_assets = links_assets.replace(old, new)
    parts = json.loads(links_assets)
    item["links"], item["assets"] = parts["links"], parts["assets"]
    for key in drop_assets:
        item["assets"].pop(key, None)
    for key, href in hrefs.items():
        item["assets"][key]["href"] = href
    item["id"] = item_id
    item["geometry"] = geometry
    item["bbox"] = [round(v, 9) for v in shape(geometry).bounds]
    item["properties"].update(properties)
    return item


def json_types(value: Any) -> Any:
    """A value's JSON-type skeleton (dict keys kept, scalars → type names), to compare item shapes."""
    if isinstance(value, dict):
        return {k: json_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"
