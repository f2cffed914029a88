"""The benchmark input: a PBF synthesised from the three real OSM fixtures (module doc of ``bench_osm.py``).

Per cycle 1 copy of Kotka (Finnish town, ``test.osm.pbf``), 4 of West Oakland (US city blocks with route
relations) and 4 of the southern-German village (``planet_10.068,…``), each copy translated to its own
0.045° × 0.025° cell of a grid starting at 5.5° E 47° N (UTM zones 31 and 32 both occur). Ids are dealt
out interleaved across copies (element ``r`` of a fixture of ``n`` sorts at ``(r + U[0, 1)) / n``,
seeded), as in a real file where a region's nodes are spread over the whole id range; refs to elements
the fixture lacks are dropped. The PBF is sorted by type then id and cached with its counts (``.json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import osmium

#: fixture, copies per cycle
MIX = (
    ("osm/test.osm.pbf", 1),
    ("osm/West-Oakland.osm.bz2", 4),
    ("osm/planet_10.068,48.135_10.071,48.137.osm", 4),
)
CELL = (0.045, 0.025)
#: PBF bytes per element of the mix (to size it from --target-mb)
BYTES_PER_ELEMENT = 6.0
MIX_NOTE = (
    "1 Kotka : 4 West Oakland : 4 southern-German village copies per cycle, ids interleaved across copies. "
    "For comparison a planet (public statistics, approximate): nodes ~89 %, ways ~11 %, relations ~0.1 %, "
    "a lower share of elements with a category key than these town extracts"
)
ORIGIN = (5.5, 47.0)


def _load(path: Path) -> dict[str, list]:
    out: dict[str, list] = {"n": [], "w": [], "r": []}
    for o in osmium.FileProcessor(str(path)):
        tags = {t.k: t.v for t in o.tags}
        if o.is_node():
            out["n"].append((o.id, o.location.lon, o.location.lat, tags))
        elif o.is_way():
            out["w"].append((o.id, [n.ref for n in o.nodes], tags))
        elif o.is_relation():
            out["r"].append((o.id, [(m.type, m.ref, m.role) for m in o.members], tags))
    return {k: sorted(v) for k, v in out.items()}


def synthesise(*, target_mb: float, cache_dir: Path) -> tuple[Path, dict]:
    """Write (or reuse) the mixed PBF of ≥ ``target_mb`` MB; return its path and its description."""
    from olmoearth_data.osm.categories import RELEVANT_KEYS
    from olmoearth_twin.fixtures import fixture_path

    cache_dir.mkdir(parents=True, exist_ok=True)
    data = [(rel, k, _load(fixture_path(rel))) for rel, k in MIX]
    per_cycle = sum(k * sum(len(v) for v in d.values()) for _, k, d in data)
    cycles = max(1, math.ceil(target_mb * 1e6 / (BYTES_PER_ELEMENT * per_cycle)))
    path = cache_dir / f"mix_{cycles}cycles.osm.pbf"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    copies = [(fi, c) for c in range(cycles) for fi, (_, k, _) in enumerate(data) for _ in range(k)]
    side = math.ceil(math.sqrt(len(copies)))
    new_ids: dict[str, dict[tuple[int, int], int]] = {}
    rng = np.random.default_rng(0)
    for kind in ("n", "w", "r"):  # interleave: element r of copy c sorts by (r + U[0, 1)) / n_fixture
        items = [((rank + rng.random()) / len(data[fi][2][kind]), c, rank)
                 for c, (fi, _) in enumerate(copies) for rank in range(len(data[fi][2][kind]))]  # fmt: skip
        items.sort()
        new_ids[kind] = {(c, rank): i + 1 for i, (_, c, rank) in enumerate(items)}
    rank_of = [
        {kind: {el[0]: r for r, el in enumerate(d[kind])} for kind in ("n", "w", "r")} for _, _, d in data
    ]
    counts = {"n": 0, "w": 0, "r": 0, "n_tagged": 0, "n_relevant": 0, "w_relevant": 0, "r_relevant": 0}
    by_fixture = {Path(rel).name: 0 for rel, _ in MIX}
    header = osmium.io.Header()
    header.set("sorting", "Type_then_ID")
    header.add_box(
        osmium.osm.Box(ORIGIN[0], ORIGIN[1], ORIGIN[0] + side * CELL[0], ORIGIN[1] + side * CELL[1])
    )
    tmp = path.with_suffix(".tmp.pbf")
    tmp.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(tmp), header=header)
    shift = []
    for c, (fi, _) in enumerate(copies):
        nodes = data[fi][2]["n"]
        x0, y0 = min(n[1] for n in nodes), min(n[2] for n in nodes)
        shift.append((ORIGIN[0] + (c % side) * CELL[0] - x0, ORIGIN[1] + (c // side) * CELL[1] - y0))
    order = {kind: sorted(new_ids[kind].items(), key=lambda kv: kv[1]) for kind in ("n", "w", "r")}
    try:
        for (c, rank), nid in order["n"]:
            fi = copies[c][0]
            _, lon, lat, tags = data[fi][2]["n"][rank]
            writer.add_node(
                osmium.osm.mutable.Node(id=nid, location=(lon + shift[c][0], lat + shift[c][1]), tags=tags)
            )
            counts["n"] += 1
            counts["n_tagged"] += bool(tags)
            counts["n_relevant"] += not RELEVANT_KEYS.isdisjoint(tags)
            by_fixture[Path(MIX[fi][0]).name] += 1
        for (c, rank), wid in order["w"]:
            fi = copies[c][0]
            _, refs, tags = data[fi][2]["w"][rank]
            ids = [new_ids["n"][(c, rank_of[fi]["n"][r])] for r in refs if r in rank_of[fi]["n"]]
            writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=ids, tags=tags))
            counts["w"] += 1
            counts["w_relevant"] += not RELEVANT_KEYS.isdisjoint(tags)
            by_fixture[Path(MIX[fi][0]).name] += 1
        for (c, rank), rid in order["r"]:
            fi = copies[c][0]
            _, members, tags = data[fi][2]["r"][rank]
            ms = [
                (t, new_ids[t][(c, rank_of[fi][t][ref])], role)
                for t, ref, role in members
                if ref in rank_of[fi][t]
            ]
            writer.add_relation(osmium.osm.mutable.Relation(id=rid, members=ms, tags=tags))
            counts["r"] += 1
            counts["r_relevant"] += not RELEVANT_KEYS.isdisjoint(tags)
            by_fixture[Path(MIX[fi][0]).name] += 1
    finally:
        writer.close()
    tmp.rename(path)
    total = counts["n"] + counts["w"] + counts["r"]
    meta = {
        "cycles": cycles,
        "copies": {Path(rel).name: k * cycles for rel, k in MIX},
        "elements": total,
        "elements_by_fixture": by_fixture,
        "types": {k: counts[k] for k in ("n", "w", "r")},
        "type_shares": {k: round(counts[k] / total, 4) for k in ("n", "w", "r")},
        "tagged_node_share": round(counts["n_tagged"] / counts["n"], 4),
        "relevant_key_share": round(
            (counts["n_relevant"] + counts["w_relevant"] + counts["r_relevant"]) / total, 4
        ),
        "relevant_by_type": {k: counts[f"{k}_relevant"] for k in ("n", "w", "r")},
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return path, meta
