"""How each Sentinel-2 L2A asset of the twin is derived from the three real bands.

Inputs are windows of the real L2A crop ``fixtures/raster/S2A_29RKH_20200219_0_L2A`` (baseline 02.14,
no offset): ``R`` = B04 and ``N`` = B08 (1098² px, used one source pixel per 10 m twin pixel) and
``S`` = B11 (549² px, one source pixel per 20 m twin pixel). At a band's resolution, ``R``/``N`` are
block means of the 10 m window (2×2 for 20 m, 6×6 for 60 m) and ``S`` the B11 window (3×3 block
means for 60 m). Land reflectance (×10 000) of a band is then::

    land = (r·R + n·N + s·S + bias) · (1 + season · sin_season) · gain_scene

with the coefficients below (``sin_season`` ∈ [−1, 1] peaks at midsummer of the tile's hemisphere;
``gain_scene`` ≈ 1 ± 1.5 % per acquisition). Water pixels take ``water · f`` (``f`` a smooth field in
[0.5, 1.5]) minus ``water_dip`` (a slight negative reflectance in SWIR, as over real dark water);
clouds blend towards ``cloud`` with the cloud opacity; see :mod:`olmoearth_twin.catalog.scene`.
B04, B08 and B11 are therefore the real pixels up to season/gain (coefficient 1 on themselves).

AOT (aerosol optical thickness × 1000) and WVP (water vapour, cm × 1000) are smooth per-scene fields
(:func:`~olmoearth_twin.catalog.scene.render_granule`); SCL is derived from the synthetic classes and
``visual`` (TCI) is ``round(reflectance · 255 / 2000)`` of B04/B03/B02 clipped to [1, 255].
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BandRecipe:
    """Linear mix (reflectance × 10 000) and resolution of one reflectance band."""

    key: str
    resolution_m: int
    r: float
    n: float
    s: float
    bias: float
    season: float
    water: float
    cloud: float
    water_dip: float = 0.0


#: Reflectance bands in PC asset-key order; B04/B08/B11 are the real bands.
REFLECTANCE_BANDS: tuple[BandRecipe, ...] = (
    BandRecipe("B01", 60, r=0.60, n=0.05, s=0.00, bias=250.0, season=-0.02, water=420.0, cloud=7400.0),
    BandRecipe("B02", 10, r=0.68, n=0.04, s=0.00, bias=120.0, season=-0.03, water=360.0, cloud=7300.0),
    BandRecipe("B03", 10, r=0.85, n=0.08, s=0.00, bias=40.0, season=-0.02, water=280.0, cloud=7200.0),
    BandRecipe("B04", 10, r=1.00, n=0.00, s=0.00, bias=0.0, season=-0.04, water=160.0, cloud=7100.0),
    BandRecipe("B05", 20, r=0.72, n=0.32, s=0.00, bias=0.0, season=0.02, water=110.0, cloud=7100.0),
    BandRecipe("B06", 20, r=0.30, n=0.74, s=0.00, bias=0.0, season=0.05, water=55.0, cloud=7150.0),
    BandRecipe("B07", 20, r=0.12, n=0.92, s=0.00, bias=0.0, season=0.06, water=40.0, cloud=7150.0),
    BandRecipe("B08", 10, r=0.00, n=1.00, s=0.00, bias=0.0, season=0.06, water=28.0, cloud=7200.0),
    BandRecipe("B09", 60, r=0.00, n=0.30, s=0.05, bias=0.0, season=0.03, water=12.0, cloud=2600.0),
    BandRecipe(
        "B11", 20, r=0.00, n=0.00, s=1.00, bias=0.0, season=-0.02, water=16.0, cloud=4800.0, water_dip=12.0
    ),
    BandRecipe(
        "B12", 20, r=-0.05, n=0.10, s=0.72, bias=0.0, season=-0.03, water=10.0, cloud=3300.0, water_dip=9.0
    ),
    BandRecipe("B8A", 20, r=0.04, n=0.97, s=0.02, bias=0.0, season=0.06, water=22.0, cloud=7050.0),
)
RECIPES: dict[str, BandRecipe] = {b.key: b for b in REFLECTANCE_BANDS}

#: Resolution (m) of every raster asset, as on PC.
RESOLUTION_M: dict[str, int] = {
    **{b.key: b.resolution_m for b in REFLECTANCE_BANDS},
    "AOT": 10,
    "WVP": 10,
    "visual": 10,
    "SCL": 20,
}

#: Vegetation end-member (reflectance × 10 000) mixed into R/N/S where centre-pivot fields are green.
VEGETATION_RNS = (400.0, 4200.0, 2000.0)
#: Processing baselines >= 04.00 store DN = reflectance + BOA_ADD_OFFSET_DN.
BOA_ADD_OFFSET_DN = 1000
#: ESA band index (``band_id`` in MTD_MSIL2A.xml) of each L2A band, B10 included.
BAND_IDS: dict[str, int] = {
    name: i
    for i, name in enumerate(
        ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
    )
}
