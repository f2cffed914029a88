"""Parts of ``benchmarks/bench_osm.py``: the synthesised input (:mod:`.mix`) and the watched child runs
(:mod:`.runs`)."""
