"""Sentinel-2 L2A item documents in PC's exact shape, built from the real recorded item as template.

Every generated item has the template's top-level keys, links (PC URLs, with our id), asset keys,
titles, roles, media types and ``eo:bands``, and the same property keys in the same order with the
same JSON types. Only values change: ids, times, geometry, hrefs and the asset ``proj:*`` fields,
which describe the COG actually written (a crop of the 109.8 km granule).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from olmoearth_twin.catalog.bands import RESOLUTION_M
from olmoearth_twin.catalog.metadata_xml import ProductNames
from olmoearth_twin.catalog.schedule import Acquisition

_IMAGE_NAME = {"visual": "TCI"}
#: Metadata asset key → path inside the .SAFE folder ({granule}/{datastrip} filled in).
METADATA_FILES = {
    "safe-manifest": "manifest.safe",
    "granule-metadata": "GRANULE/{granule}/MTD_TL.xml",
    "inspire-metadata": "INSPIRE.xml",
    "product-metadata": "MTD_MSIL2A.xml",
    "datastrip-metadata": "DATASTRIP/{datastrip}/MTD_DS.xml",
}


def _stamp(when: Any) -> str:
    return when.strftime("%Y%m%dT%H%M%S")


def _sat(acq: Acquisition) -> str:
    return "S2" + acq.platform[-1]


def _centre(acq: Acquisition) -> str:
    # Newer products come from the platform's own processing centre, older ones from "MPS_".
    return f"2{acq.platform[-1]}PS" if acq.boa_offset else "MPS_"


def item_id(*, acq: Acquisition, mgrs: str) -> str:
    """PC id ``S2B_MSIL2A_<sensing>_R<orbit>_T<mgrs>_<generation>`` (baseline dropped, as on PC)."""
    return (
        f"{_sat(acq)}_MSIL2A_{_stamp(acq.sensing)}_R{acq.relative_orbit:03d}_T{mgrs}_{_stamp(acq.generation)}"
    )


def product_names(*, acq: Acquisition, mgrs: str) -> ProductNames:
    """SAFE identifiers and folder names of the product of ``acq`` over granule ``mgrs``."""
    sat, baseline = _sat(acq), acq.baseline
    product_uri = (
        f"{sat}_MSIL2A_{_stamp(acq.sensing)}_N{baseline.replace('.', '')}_R{acq.relative_orbit:03d}"
        f"_T{mgrs}_{_stamp(acq.generation)}.SAFE"
    )
    granule_dir = f"L2A_T{mgrs}_A{acq.absolute_orbit:06d}_{_stamp(acq.datastrip_start)}"
    return ProductNames(
        product_uri=product_uri,
        granule_id=f"{sat}_OPER_MSI_L2A_TL_{_centre(acq)}_{_stamp(acq.generation)}_A{acq.absolute_orbit:06d}"
        f"_T{mgrs}_N{baseline}",
        datastrip_id=f"{sat}_OPER_MSI_L2A_DS_{_centre(acq)}_{_stamp(acq.generation)}_S{_stamp(acq.datastrip_start)}"
        f"_N{baseline}",
        datatake_id=f"G{sat}_{_stamp(acq.sensing)}_{acq.absolute_orbit:06d}_N{baseline}",
        granule_dir=granule_dir,
        image_stem=f"GRANULE/{granule_dir}/IMG_DATA/R10m/T{mgrs}_{_stamp(acq.sensing)}",
    )


@dataclass(frozen=True)
class ProductPaths:
    """Blob paths (below the container) of one product's files."""

    safe: str  # <zone>/<band>/<square>/<yyyy>/<mm>/<dd>/<product_uri>
    rasters: dict[str, str]  # asset key -> blob path of the COG
    metadata: dict[str, str]  # asset key -> blob path of the XML


def product_paths(*, acq: Acquisition, mgrs: str, names: ProductNames) -> ProductPaths:
    """PC's blob layout below the container.

    E.g. ``53/N/KG/2025/03/12/<uri>.SAFE/GRANULE/<dir>/IMG_DATA/R10m/T53NKG_<sensing>_B04_10m.tif``.
    """
    safe = f"{mgrs[:2]}/{mgrs[2]}/{mgrs[3:]}/{acq.sensing:%Y/%m/%d}/{names.product_uri}"
    datastrip_dir = f"DS_{_centre(acq)}_{_stamp(acq.generation)}_S{_stamp(acq.datastrip_start)}"
    rasters = {}
    for key, res in RESOLUTION_M.items():
        name = _IMAGE_NAME.get(key, key)
        rasters[key] = (
            f"{safe}/GRANULE/{names.granule_dir}/IMG_DATA/R{res}m/"
            f"T{mgrs}_{_stamp(acq.sensing)}_{name}_{res}m.tif"
        )
    metadata = {
        k: f"{safe}/{v.format(granule=names.granule_dir, datastrip=datastrip_dir)}"
        for k, v in METADATA_FILES.items()
    }
    return ProductPaths(safe=safe, rasters=rasters, metadata=metadata)


def build_item(
    *,
    template: dict[str, Any],
    new_id: str,
    blob_base: str,
    paths: ProductPaths,
    crop: tuple[float, float, float, float],
    geometry: dict[str, Any],
    bbox: list[float],
    properties: dict[str, Any],
) -> dict[str, Any]:
    """An item like ``template`` with new values.

    Args:
        template: the real PC item (dict); not modified.
        blob_base: ``https://<account>.blob.core.windows.net/<container>``.
        crop: (xmin, ymin, xmax, ymax) of the COGs in the item's UTM CRS.
        properties: every template property key (extra or missing keys raise ``ValueError``).
    """
    if list(properties) != list(template["properties"]):
        raise ValueError(f"property keys differ from PC's: {set(properties) ^ set(template['properties'])}")
    old_id = template["id"]
    item = copy.deepcopy(template)
    item["id"] = new_id
    item["bbox"] = bbox
    item["geometry"] = geometry
    item["properties"] = properties
    for link in item["links"]:
        link["href"] = link["href"].replace(old_id, new_id)
    xmin, ymin, xmax, ymax = crop
    for key, asset in item["assets"].items():
        if key in paths.rasters:
            res = float(RESOLUTION_M[key])
            asset["href"] = f"{blob_base}/{paths.rasters[key]}"
            asset["proj:bbox"] = [xmin, ymin, xmax, ymax]
            asset["proj:shape"] = [round((ymax - ymin) / res), round((xmax - xmin) / res)]
            asset["proj:transform"] = [res, 0.0, xmin, 0.0, -res, ymax]
        elif key in paths.metadata:
            asset["href"] = f"{blob_base}/{paths.metadata[key]}"
        else:  # data-API assets (tilejson, rendered_preview) name the item in their query
            asset["href"] = asset["href"].replace(old_id, new_id)
    return item
