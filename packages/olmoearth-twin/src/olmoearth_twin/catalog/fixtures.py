"""Where the shared reference fixtures are (the real collection/item JSON and the real S2 pixels)."""

from __future__ import annotations

import os
from pathlib import Path

FIXTURES_ENV = "OLMOEARTH_FIXTURES_DIR"
S2_COLLECTION = "stac-extracted/sentinel-2-l2a.collection.json"
S2_ITEM = "stac-extracted/sentinel-2-l2a.items-limit1.json"
S2_PIXELS = "raster/S2A_29RKH_20200219_0_L2A"


def find_fixtures_dir() -> Path:
    """``$OLMOEARTH_FIXTURES_DIR``, else the first ``shared/fixtures`` found next to or above the
    current folder or this package (the monorepo sits beside ``shared/``)."""
    env = os.environ.get(FIXTURES_ENV)
    if env:
        return Path(env)
    starts = [Path.cwd(), Path(__file__).resolve()]
    for start in starts:
        for folder in [start, *start.parents]:
            for candidate in (folder / "shared" / "fixtures", folder.parent / "shared" / "fixtures"):
                if (candidate / S2_ITEM).is_file():
                    return candidate
    raise FileNotFoundError(f"shared/fixtures not found; set ${FIXTURES_ENV} to the fixtures folder")
