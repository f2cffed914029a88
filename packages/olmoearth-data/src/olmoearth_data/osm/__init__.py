"""OpenStreetMap: sampling categories, the OSM pass, stratified tile sampling, time.

Modules: :mod:`categories` (tag rules as data, evaluated per element or per batch), :mod:`extract`
(the pass's entry point: OSM file → sampling points and per-tile raster features), and its parts
:mod:`blocks` (a PBF as blobs, split into pieces), :mod:`opl` (libosmium writes matching elements as
OPL, pyarrow parses it), :mod:`tagtable` (a batch's tags as columns), :mod:`nodeindex` (node locations
on disk, shared by workers), :mod:`vectorised` (batch matching, geometry, tiles, rows),
:mod:`parallel` (worker processes, deterministic merge); :mod:`geometry` (tiles a feature touches),
:mod:`sampling` (per-category tile draw), :mod:`time` (centre dates), :mod:`pipeline` (inputs: file /
Overpass / lon-lat list, GeoParquet sample table, per-category summary, dry-run estimate).
See ``docs/data.md`` §3, §5.
"""
