"""OpenStreetMap: sampling categories, one streaming extraction pass, stratified tile sampling, time.

Modules: :mod:`categories` (tag rules as data), :mod:`extract` (pyosmium pass → sampling points and
per-tile raster features), :mod:`geometry` (tiles a feature touches), :mod:`sampling` (per-category
tile draw), :mod:`time` (centre dates), :mod:`pipeline` (inputs: file / Overpass / lon-lat list,
GeoParquet sample table, per-category summary, dry-run estimate). See ``docs/data.md`` §3, §5.
"""
