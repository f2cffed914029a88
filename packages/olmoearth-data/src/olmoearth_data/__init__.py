"""OlmoEarth corpus construction: tile grid, modality registry, STAC materialisation, Zarr v3 cubes."""

__version__ = "0.1.0"
