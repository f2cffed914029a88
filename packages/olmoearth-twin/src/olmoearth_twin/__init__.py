"""Local twin of Microsoft Planetary Computer: the same STAC software (pgstac + stac-fastapi), a SAS
token stand-in for the real ``planetary_computer`` SDK, a range-capable blob server, and a generated
Sentinel-2 L2A catalogue in PC's exact item schema, the other PC collections and NAIP, the non-PC maps,
and an optional fault-injecting proxy. See the package README."""

from olmoearth_twin.blob_urls import BLOB_ENDPOINT_ENV, parse_blob_url, rewrite_href
from olmoearth_twin.catalog.maps import generate_maps
from olmoearth_twin.catalog.naip import generate_naip
from olmoearth_twin.catalog.samples import DEFAULT_SAMPLES, DEMO_SAMPLES, SMALL_SAMPLES, default_samples
from olmoearth_twin.catalog.sentinel2 import generate_sentinel2
from olmoearth_twin.catalog.store import Catalog
from olmoearth_twin.servers.faults import FaultConfig, FaultProxy
from olmoearth_twin.servers.twin import Twin

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
