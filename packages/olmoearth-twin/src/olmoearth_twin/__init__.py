"""Local twin of Microsoft Planetary Computer: the same STAC software (pgstac + stac-fastapi), a SAS
token stand-in for the real ``planetary_computer`` SDK, a range-capable blob server, and a generated
Sentinel-2 L2A catalogue in PC's exact item schema, the other PC collections and NAIP, the non-PC maps,
and an optional fault-injecting proxy. See the package README."""

from __future__ import annotations

import importlib
from typing import Any

#: Public name → defining module, imported on first use (PEP 562) so that ``olmoearth-twin --help`` and
#: other light imports of the package do not pay for pandas/pyproj/rasterio (~1 s).
_EXPORTS = {
    "BLOB_ENDPOINT_ENV": "olmoearth_twin.blob_urls",
    "parse_blob_url": "olmoearth_twin.blob_urls",
    "rewrite_href": "olmoearth_twin.blob_urls",
    "generate_maps": "olmoearth_twin.catalog.maps",
    "generate_naip": "olmoearth_twin.catalog.naip",
    "DEFAULT_SAMPLES": "olmoearth_twin.catalog.samples",
    "DEMO_SAMPLES": "olmoearth_twin.catalog.samples",
    "SMALL_SAMPLES": "olmoearth_twin.catalog.samples",
    "default_samples": "olmoearth_twin.catalog.samples",
    "generate_sentinel2": "olmoearth_twin.catalog.sentinel2",
    "Catalog": "olmoearth_twin.catalog.store",
    "FaultConfig": "olmoearth_twin.servers.faults",
    "FaultProxy": "olmoearth_twin.servers.faults",
    "Twin": "olmoearth_twin.servers.twin",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'olmoearth_twin' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = [
    "BLOB_ENDPOINT_ENV",
    "DEFAULT_SAMPLES",
    "DEMO_SAMPLES",
    "SMALL_SAMPLES",
    "Catalog",
    "FaultConfig",
    "FaultProxy",
    "Twin",
    "default_samples",
    "generate_maps",
    "generate_naip",
    "generate_sentinel2",
    "parse_blob_url",
    "rewrite_href",
]
