"""A loopback Overpass API stand-in that answers osmnx 2.x feature queries from local OSM files.

osmnx (``_overpass._create_overpass_features_query``) POSTs ``data=<Overpass QL>`` to
``<overpass_url>/interpreter``; the query is a union of clauses
``(node['key'='value'](poly:'lat lon lat lon …');(._;>;););`` (or ``['key']`` for "any value",
one clause per element type and tag), preceded by ``[out:json][timeout:…]`` settings and followed by
``out;``. It parses the JSON ``{"elements": [...]}``: nodes with ``lat``/``lon``, ways with ``nodes``,
relations with ``members``, each with optional ``tags``. This server implements exactly that subset
(plus the ``(south,west,north,east)`` bbox filter form): an element matches a clause if its type and
tag match and its geometry intersects the polygon (a node lies in it; a way has a segment in it; a
relation has a node or way member in it); ``(._;>;)`` adds way nodes and relation members (and their
nodes). Other queries get HTTP 400 with a one-line reason.

Usage (tests)::

    with OverpassStandIn(files=[Path("West-Oakland.osm.bz2")]) as srv:
        ox.settings.overpass_url = srv.url
"""

from __future__ import annotations

import ast
import json
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import osmium
import shapely
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from olmoearth_twin.servers.http_thread import BackgroundHTTPServer, QuietHandler

_CLAUSE = re.compile(
    r"(node|way|relation)((?:\[[^\]]*\])+)"
    r"\((?:poly:(?P<poly>'[^']*'|\"[^\"]*\")|(?P<bbox>-?[\d.]+,-?[\d.]+,-?[\d.]+,-?[\d.]+))\);"
    r"(?P<down>\(\._;>;\);)?"
)
_TAG = re.compile(
    r"\[\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[\w:]+)\s*(?:=\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\]]+))?\s*\]"
)


@dataclass
class OsmStore:
    """All elements of some OSM files in memory (fixtures are small): id → (geometry inputs, tags)."""

    nodes: dict[int, tuple[float, float, dict[str, str]]] = field(default_factory=dict)
    ways: dict[int, tuple[list[int], dict[str, str]]] = field(default_factory=dict)
    relations: dict[int, tuple[list[tuple[str, int, str]], dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, *, files: Sequence[Path | str]) -> OsmStore:
        """Parse ``.osm``/``.osm.bz2``/``.osm.pbf`` files with pyosmium (later files win on id clashes)."""
        store = cls()
        for f in files:
            for obj in osmium.FileProcessor(str(f)):
                tags = {t.k: t.v for t in obj.tags}
                if obj.is_node():
                    if obj.location.valid():
                        store.nodes[obj.id] = (obj.location.lon, obj.location.lat, tags)
                elif obj.is_way():
                    store.ways[obj.id] = ([n.ref for n in obj.nodes], tags)
                elif obj.is_relation():
                    store.relations[obj.id] = ([(m.type, m.ref, m.role) for m in obj.members], tags)
        return store

    def way_geometry(self, way_id: int) -> BaseGeometry | None:
        coords = [self.nodes[n][:2] for n in self.ways[way_id][0] if n in self.nodes]
        if not coords:
            return None
        return Point(coords[0]) if len(coords) == 1 else LineString(coords)


def _unquote(token: str) -> str:
    token = token.strip()
    return ast.literal_eval(token) if token[:1] in "'\"" else token


def parse_query(query: str) -> list[tuple[str, list[tuple[str, str | None]], BaseGeometry, bool]]:
    """Clauses of an osmnx features query: (element type, [(key, value or None)], area, recurse down)."""
    clauses = []
    for m in _CLAUSE.finditer(query):
        # findall yields "" for an absent value group: "[key]" means "key present".
        tags = [(_unquote(k), _unquote(v) if v else None) for k, v in _TAG.findall(m.group(2))]
        if m.group("poly"):
            nums = [float(v) for v in _unquote(m.group("poly")).split()]
            area: BaseGeometry = Polygon(list(zip(nums[1::2], nums[0::2])))  # "lat lon" pairs
        else:
            s, w, n, e = (float(v) for v in m.group("bbox").split(","))
            area = box(w, s, e, n)
        clauses.append((m.group(1), tags, area, m.group("down") is not None))
    if not clauses:
        raise ValueError("no supported clause found (expected osmnx-style node/way/relation[tag](poly:...))")
    return clauses


def answer(store: OsmStore, query: str) -> dict:
    """Overpass JSON for ``query`` from ``store`` (elements sorted by type then id, like ``out;``)."""
    found: dict[str, set[int]] = {"node": set(), "way": set(), "relation": set()}
    for kind, tags, area, down in parse_query(query):
        shapely.prepare(area)
        table = {"node": store.nodes, "way": store.ways, "relation": store.relations}[kind]
        for eid, value in table.items():
            etags = value[-1]
            if not all((k in etags) if v is None else etags.get(k) == v for k, v in tags):
                continue
            if not _in_area(store, kind, eid, area):
                continue
            found[kind].add(eid)
            if down:
                _recurse_down(store, kind, eid, found)
    elements = []
    for nid in sorted(found["node"]):
        lon, lat, tags = store.nodes[nid]
        elements.append(
            {"type": "node", "id": nid, "lat": lat, "lon": lon, **({"tags": tags} if tags else {})}
        )
    for wid in sorted(found["way"]):
        refs, tags = store.ways[wid]
        elements.append({"type": "way", "id": wid, "nodes": refs, **({"tags": tags} if tags else {})})
    for rid in sorted(found["relation"]):
        members, tags = store.relations[rid]
        elements.append({
            "type": "relation", "id": rid,
            "members": [{"type": {"n": "node", "w": "way", "r": "relation"}[t], "ref": r, "role": role}
                        for t, r, role in members],
            **({"tags": tags} if tags else {}),
        })  # fmt: skip
    return {"version": 0.6, "generator": "olmoearth-twin Overpass stand-in", "elements": elements}


def _in_area(store: OsmStore, kind: str, eid: int, area: BaseGeometry) -> bool:
    if kind == "node":
        lon, lat, _ = store.nodes[eid]
        return area.intersects(Point(lon, lat))
    if kind == "way":
        geom = store.way_geometry(eid)
        return geom is not None and area.intersects(geom)
    for t, ref, _ in store.relations[eid][0]:
        if t == "n" and ref in store.nodes and _in_area(store, "node", ref, area):
            return True
        if t == "w" and ref in store.ways and _in_area(store, "way", ref, area):
            return True
    return False


def _recurse_down(store: OsmStore, kind: str, eid: int, found: dict[str, set[int]]) -> None:
    if kind == "way":
        found["node"].update(n for n in store.ways[eid][0] if n in store.nodes)
    elif kind == "relation":
        for t, ref, _ in store.relations[eid][0]:
            if t == "n" and ref in store.nodes:
                found["node"].add(ref)
            elif t == "w" and ref in store.ways:
                found["way"].add(ref)
                _recurse_down(store, "way", ref, found)


class _Handler(QuietHandler):
    store: OsmStore

    def _serve(self, query: str | None) -> None:
        if self.path.split("?")[0].rstrip("/").endswith("/status"):
            self.send_body(status=200, body=b"Connected as: 0\nRate limit: 0\n0 slots available now.\n",
                           content_type="text/plain")  # fmt: skip
            return
        if not self.path.split("?")[0].rstrip("/").endswith("/interpreter") or not query:
            self.send_body(status=400, body=b"expected /interpreter with data=<Overpass QL>\n",
                           content_type="text/plain")  # fmt: skip
            return
        try:
            body = json.dumps(answer(self.store, query)).encode()
        except (ValueError, SyntaxError) as exc:
            self.send_body(status=400, body=f"unsupported query: {exc}\n".encode(), content_type="text/plain")
            return
        self.send_body(status=200, body=body, content_type="application/json")

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self._serve(params.get("data", [None])[0])

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        params = urllib.parse.parse_qs(self.rfile.read(length).decode())
        self._serve(params.get("data", [None])[0])


class OverpassStandIn:
    """Serve OSM files as an Overpass API on loopback; ``url`` is what ``ox.settings.overpass_url`` takes."""

    def __init__(self, *, files: Sequence[Path | str], port: int = 0) -> None:
        handler = type("OverpassHandler", (_Handler,), {"store": OsmStore.load(files=files)})
        self._http = BackgroundHTTPServer(handler=handler, port=port)

    @property
    def url(self) -> str:
        return f"{self._http.url}/api"

    def start(self) -> OverpassStandIn:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> OverpassStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
