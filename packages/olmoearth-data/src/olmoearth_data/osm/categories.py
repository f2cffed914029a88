"""The 118 OSM sampling categories (data spec §3.2) and the 30 raster categories (§5.1) as data.

A rule is a small tree evaluated on an element's tag mapping (``Mapping[str, str]``):
:class:`Eq` (key = value), :class:`Present` (key present with a non-empty value, OSM's ``=*``),
:class:`NotEq` (key absent or ≠ value), :class:`OneOf` (value in a set), :class:`All` (conjunction)
and :class:`AnyOf` (alternatives). Categories are not exclusive: an element gets every category whose
rule matches (e.g. ``power_plant`` and ``power_plant_solar``).

Each rule also evaluates a whole batch of elements at once (``mask(tags)`` on a
:class:`~olmoearth_data.osm.tagtable.TagTable`, one boolean per element): the vectorised pass
(:mod:`olmoearth_data.osm.vectorised`) uses that, the per-element ``__call__`` stays the reference.

Raster category ``water_tower``: the reference configures the key as ``man_mode`` (a typo for
``man_made``) so its band is almost always empty. We knowingly FIX the typo and match
``man_made=water_tower``; a corpus built with this code therefore has a non-empty band 28 where
water towers exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from olmoearth_data.osm.tagtable import TagTable


@dataclass(frozen=True)
class Eq:
    """``key=value``."""

    key: str
    value: str

    def __call__(self, tags: Mapping[str, str]) -> bool:
        return tags.get(self.key) == self.value

    def mask(self, tags: TagTable) -> np.ndarray:
        return tags.equals(self.key, self.value)

    def keys(self) -> frozenset[str]:
        return frozenset({self.key})


@dataclass(frozen=True)
class Present:
    """``key=*``: present with a non-empty value."""

    key: str

    def __call__(self, tags: Mapping[str, str]) -> bool:
        return bool(tags.get(self.key))

    def mask(self, tags: TagTable) -> np.ndarray:
        return tags.present(self.key)

    def keys(self) -> frozenset[str]:
        return frozenset({self.key})


@dataclass(frozen=True)
class NotEq:
    """``key≠value`` (true when the key is absent). Never a rule on its own: it filters a conjunction."""

    key: str
    value: str

    def __call__(self, tags: Mapping[str, str]) -> bool:
        return tags.get(self.key) != self.value

    def mask(self, tags: TagTable) -> np.ndarray:
        return ~tags.equals(self.key, self.value)

    def keys(self) -> frozenset[str]:
        return frozenset()  # a negation alone cannot make an element relevant


@dataclass(frozen=True)
class OneOf:
    """``key ∈ values``."""

    key: str
    values: frozenset[str]

    def __call__(self, tags: Mapping[str, str]) -> bool:
        return tags.get(self.key) in self.values

    def mask(self, tags: TagTable) -> np.ndarray:
        return tags.isin(self.key, self.values)

    def keys(self) -> frozenset[str]:
        return frozenset({self.key})


@dataclass(frozen=True)
class All:
    """Conjunction of rules."""

    rules: tuple[Rule, ...]

    def __call__(self, tags: Mapping[str, str]) -> bool:
        return all(r(tags) for r in self.rules)

    def mask(self, tags: TagTable) -> np.ndarray:
        out = self.rules[0].mask(tags)
        for r in self.rules[1:]:
            if not out.any():
                break
            out &= r.mask(tags)
        return out

    def keys(self) -> frozenset[str]:
        # Every positive key is required, so one of them suffices as a pre-filter key.
        return frozenset().union(*(r.keys() for r in self.rules))


@dataclass(frozen=True)
class AnyOf:
    """Alternatives."""

    rules: tuple[Rule, ...]

    def __call__(self, tags: Mapping[str, str]) -> bool:
        return any(r(tags) for r in self.rules)

    def mask(self, tags: TagTable) -> np.ndarray:
        out = self.rules[0].mask(tags)
        for r in self.rules[1:]:
            out |= r.mask(tags)
        return out

    def keys(self) -> frozenset[str]:
        return frozenset().union(*(r.keys() for r in self.rules))


Rule = Eq | Present | NotEq | OneOf | All | AnyOf


def _all(*rules: Rule) -> All:
    return All(tuple(rules))


@dataclass(frozen=True)
class SamplingCategory:
    """One of the 118 categories that stratify the spatial sample."""

    name: str
    rule: Rule


class GeometryKind(StrEnum):
    POINT = "Point"
    LINESTRING = "LineString"
    POLYGON = "Polygon"
    #: river: ways → LineString, relations → Polygon.
    LINE_OR_AREA = "LineString|Polygon"


ANY_ELEMENT = frozenset({"node", "way", "relation"})
WAY_REL = frozenset({"way", "relation"})
WAY = frozenset({"way"})


@dataclass(frozen=True)
class RasterCategory:
    """One band of the ``openstreetmap_raster`` modality: a tag rule, element types and geometry kind."""

    name: str
    rule: Rule
    element_types: frozenset[str]
    geometry: GeometryKind
    copied_tag: str | None = None


_RAILWAY = _all(Present("railway"), NotEq("tunnel", "yes"), NotEq("railway", "abandoned"))
_PLANT_SOURCES = (
    "wind", "solar", "biomass", "hydro", "coal", "gas", "oil", "geothermal", "nuclear", "waste", "battery",
)  # fmt: skip
_LEISURE = (
    "pitch", "swimming_pool", "park", "garden", "playground", "sports_centre", "track", "slipway",
    "stadium", "golf_course", "marina", "water_park", "horse_riding", "beach_resort", "ice_rink",
    "climbing",
)  # fmt: skip
_PITCH_SPORTS = (
    ("american_football", ("american_football",)), ("badminton", ("badminton",)),
    ("baseball", ("baseball",)), ("basketball", ("basketball",)), ("cricket", ("cricket",)),
    ("rugby", ("rugby", "rugby_league", "rugby_union")), ("soccer", ("soccer",)),
    ("tennis", ("tennis",)), ("volleyball", ("volleyball",)),
)  # fmt: skip
_TRACK_SPORTS = (
    ("running", ("running",)),
    ("cycling", ("cycling",)),
    ("horse", ("horse_racing", "equestrian")),
)


def _sport(leisure: str, values: tuple[str, ...]) -> All:
    sport: Rule = Eq("sport", values[0]) if len(values) == 1 else OneOf("sport", frozenset(values))
    return _all(Eq("leisure", leisure), sport)


def _build_sampling() -> tuple[SamplingCategory, ...]:
    c: list[tuple[str, Rule]] = [
        ("railway", _RAILWAY),
        ("railway_bridge", _all(_RAILWAY, Present("bridge"))),
        ("river", Eq("waterway", "river")),
        ("fountain", Eq("amenity", "fountain")),
        ("toll_booth", Eq("barrier", "toll_booth")),
    ]
    c += [(v, Eq("man_made", v)) for v in (
        "chimney", "crane", "obelisk", "observatory", "satellite_dish", "tower", "works", "flagpole",
        "pier")]  # fmt: skip
    c += [(v, Eq("landuse", v)) for v in (
        "farmland", "orchard", "vineyard", "industrial", "cemetery", "allotments", "reservoir", "quarry",
        "greenhouse_horticulture", "landfill", "winter_sports")]  # fmt: skip
    c += [(f"quarry_{r}", _all(Eq("landuse", "quarry"), Eq("resource", r)))
          for r in ("sand", "gravel", "clay", "coal", "peat")]  # fmt: skip
    c += [
        ("wind_turbine", Eq("generator:source", "wind")),
        ("aquafarm", AnyOf((Eq("landuse", "aquaculture"), Eq("seamark:type", "marine_farm")))),
        ("lighthouse", Eq("man_made", "lighthouse")),
        ("lock", Eq("water", "lock")),
        ("dam", Eq("waterway", "dam")),
        ("power_plant", Eq("power", "plant")),
    ]
    c += [(f"power_plant_{s}", _all(Eq("power", "plant"), Eq("plant:source", s))) for s in _PLANT_SOURCES]
    c += [("gas_station", Eq("amenity", "fuel"))]
    c += [(f"leisure_{v}", Eq("leisure", v)) for v in _LEISURE]
    c += [(name, _sport("pitch", vals)) for name, vals in _PITCH_SPORTS]
    c += [(name, _sport("track", vals)) for name, vals in _TRACK_SPORTS]
    c += [
        ("parking_garage", _all(Eq("amenity", "parking"), Eq("building", "parking"))),
        ("parking_lot", _all(Eq("amenity", "parking"), NotEq("building", "parking"))),
        ("mineshaft", Eq("man_made", "mineshaft")),
        ("airport", Eq("aeroway", "aerodrome")),
    ]
    c += [(f"airport_{v}", Eq("aeroway", v)) for v in ("runway", "taxiway", "apron", "hangar")]
    c += [("airstrip", Eq("aeroway", "airstrip")), ("airport_terminal", Eq("aeroway", "terminal")),
          ("theme_park", Eq("tourism", "theme_park"))]  # fmt: skip
    c += [(v, Eq("man_made", v)) for v in ("storage_tank", "silo", "wastewater_plant")]
    c += [
        ("aerialway_pylon", Eq("aerialway", "pylon")),
        ("communications_tower", Eq("man_made", "communications_tower")),
        ("helipad", Eq("aeroway", "helipad")),
        ("launchpad", Eq("aeroway", "launchpad")),
        ("water_tower", Eq("man_made", "water_tower")),
        ("petroleum_well", Eq("man_made", "petroleum_well")),
        ("power_tower", Eq("power", "tower")),
        ("power_substation", Eq("power", "substation")),
        ("shop_mall", Eq("shop", "mall")),
        ("shop_department_store", Eq("shop", "department_store")),
        ("hospital", Eq("amenity", "hospital")),
        ("ferry_terminal", Eq("amenity", "ferry_terminal")),
        ("place_of_worship", Eq("amenity", "place_of_worship")),
        ("natural_peak", Eq("natural", "peak")),
    ]
    c += [(v, Eq("man_made", v)) for v in ("offshore_platform", "beacon")]
    c += [("man_made_bridge", Eq("man_made", "bridge"))]
    c += [(v, Eq("man_made", v)) for v in ("flare", "oil_gas_separator", "pumping_station")]
    c += [("trailhead", Eq("highway", "trailhead"))]
    c += [(f"natural_{v}", Eq("natural", v)) for v in (
        "cape", "geyser", "hot_spring", "arch", "cave_entrance", "hill", "volcano")]  # fmt: skip
    return tuple(SamplingCategory(n, r) for n, r in c)


#: The 118 sampling categories in the reference's order (data spec §3.2).
SAMPLING_CATEGORIES: tuple[SamplingCategory, ...] = _build_sampling()
SAMPLING_CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in SAMPLING_CATEGORIES)

_P, _L, _A = GeometryKind.POINT, GeometryKind.LINESTRING, GeometryKind.POLYGON

#: The 30 raster categories in band order (data spec §5.1; ``water_tower`` typo fixed, see module doc).
RASTER_CATEGORIES: tuple[RasterCategory, ...] = (
    RasterCategory("aerialway_pylon", Eq("aerialway", "pylon"), ANY_ELEMENT, _P),
    RasterCategory("aerodrome", Eq("aeroway", "aerodrome"), WAY_REL, _A),
    RasterCategory("airstrip", Eq("aeroway", "airstrip"), WAY, _L),
    RasterCategory("amenity_fuel", Eq("amenity", "fuel"), WAY_REL, _A),
    RasterCategory("building", Present("building"), WAY_REL, _A, "building"),
    RasterCategory("chimney", Eq("man_made", "chimney"), ANY_ELEMENT, _P),
    RasterCategory("communications_tower", Eq("man_made", "communications_tower"), ANY_ELEMENT, _P),
    RasterCategory("crane", Eq("man_made", "crane"), ANY_ELEMENT, _P),
    RasterCategory("flagpole", Eq("man_made", "flagpole"), ANY_ELEMENT, _P),
    RasterCategory("fountain", Eq("amenity", "fountain"), ANY_ELEMENT, _P),
    RasterCategory("generator_wind", Eq("generator:source", "wind"), ANY_ELEMENT, _P),
    RasterCategory("helipad", Eq("aeroway", "helipad"), ANY_ELEMENT, _P),
    RasterCategory("highway", Present("highway"), WAY, _L, "highway"),
    RasterCategory("leisure", Present("leisure"), WAY_REL, _A, "leisure"),
    RasterCategory("lighthouse", Eq("man_made", "lighthouse"), ANY_ELEMENT, _P),
    RasterCategory("obelisk", Eq("man_made", "obelisk"), ANY_ELEMENT, _P),
    RasterCategory("observatory", Eq("man_made", "observatory"), ANY_ELEMENT, _P),
    RasterCategory("parking", Eq("amenity", "parking"), WAY_REL, _A),
    RasterCategory("petroleum_well", Eq("man_made", "petroleum_well"), ANY_ELEMENT, _P),
    RasterCategory("power_plant", Eq("power", "plant"), WAY_REL, _A, "plant:source"),
    RasterCategory("power_substation", Eq("power", "substation"), WAY_REL, _A),
    RasterCategory("power_tower", Eq("power", "tower"), ANY_ELEMENT, _P),
    RasterCategory("river", Eq("waterway", "river"), WAY_REL, GeometryKind.LINE_OR_AREA, "waterway"),
    RasterCategory("runway", Eq("aeroway", "runway"), WAY, _L),
    RasterCategory("satellite_dish", Eq("man_made", "satellite_dish"), ANY_ELEMENT, _P),
    RasterCategory("silo", Eq("man_made", "silo"), ANY_ELEMENT, _P),
    RasterCategory("storage_tank", Eq("man_made", "storage_tank"), ANY_ELEMENT, _P),
    RasterCategory("taxiway", Eq("aeroway", "taxiway"), WAY, _L),
    RasterCategory("water_tower", Eq("man_made", "water_tower"), ANY_ELEMENT, _P),
    RasterCategory("works", Eq("man_made", "works"), WAY_REL, _A),
)
RASTER_CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in RASTER_CATEGORIES)

#: Every key some rule needs: an element without any of them matches no category (a cheap pre-filter).
RELEVANT_KEYS: frozenset[str] = frozenset().union(
    *(c.rule.keys() for c in SAMPLING_CATEGORIES), *(c.rule.keys() for c in RASTER_CATEGORIES)
)


def _referenced_keys(rule: Rule) -> frozenset[str]:
    if isinstance(rule, All | AnyOf):
        return frozenset().union(*(_referenced_keys(r) for r in rule.rules))
    return frozenset({rule.key})


#: Every key any rule reads (``RELEVANT_KEYS`` plus keys only negated, e.g. ``tunnel``): the tags the
#: vectorised pass keeps from each element.
RULE_KEYS: frozenset[str] = frozenset().union(
    *(_referenced_keys(c.rule) for c in SAMPLING_CATEGORIES),
    *(_referenced_keys(c.rule) for c in RASTER_CATEGORIES),
)


def _anchor_keys(rule: Rule) -> frozenset[str]:
    """Keys of which at least one must be present for ``rule`` to match (for indexing rules by key)."""
    if isinstance(rule, All):
        for r in rule.rules:
            if r.keys():
                return _anchor_keys(r)
    return rule.keys()


def _index_by_key(rules: tuple[Rule, ...]) -> dict[str, tuple[int, ...]]:
    index: dict[str, list[int]] = {}
    for i, rule in enumerate(rules):
        for key in _anchor_keys(rule):
            index.setdefault(key, []).append(i)
    return {k: tuple(v) for k, v in index.items()}


# Evaluating 148 rules per tagged element dominates a Python pass; indexing them by an anchor key means
# only the handful of rules that could match are evaluated.
_SAMPLING_BY_KEY = _index_by_key(tuple(c.rule for c in SAMPLING_CATEGORIES))
_RASTER_BY_KEY = _index_by_key(tuple(c.rule for c in RASTER_CATEGORIES))


def _candidates(tags: Mapping[str, str], index: dict[str, tuple[int, ...]]) -> list[int]:
    found: set[int] = set()
    for key in tags:
        hit = index.get(key)
        if hit:
            found.update(hit)
    return sorted(found)


def sampling_categories(*, tags: Mapping[str, str]) -> list[str]:
    """Names of the sampling categories whose rule matches ``tags`` (reference order)."""
    return [
        SAMPLING_CATEGORIES[i].name
        for i in _candidates(tags, _SAMPLING_BY_KEY)
        if SAMPLING_CATEGORIES[i].rule(tags)
    ]


def raster_categories(*, tags: Mapping[str, str], element_type: str) -> list[RasterCategory]:
    """Raster categories matching ``tags`` that allow ``element_type`` ("node", "way" or "relation")."""
    out = []
    for i in _candidates(tags, _RASTER_BY_KEY):
        c = RASTER_CATEGORIES[i]
        if element_type in c.element_types and c.rule(tags):
            out.append(c)
    return out


def sampling_matrix(*, tags: TagTable) -> np.ndarray:
    """Vectorised :func:`sampling_categories`: bool ``[n, 118]``, column j = ``SAMPLING_CATEGORIES[j]``.

    Rules whose anchor key no element of the batch carries are skipped (their column stays False).
    """
    out = np.zeros((tags.n, len(SAMPLING_CATEGORIES)), dtype=bool)
    for i in _rules_to_evaluate(tags, _SAMPLING_BY_KEY):
        out[:, i] = SAMPLING_CATEGORIES[i].rule.mask(tags)
    return out


def raster_matrix(*, tags: TagTable, element_type: str) -> np.ndarray:
    """Vectorised :func:`raster_categories` for one element type: bool ``[n, 30]`` in band order."""
    out = np.zeros((tags.n, len(RASTER_CATEGORIES)), dtype=bool)
    for i in _rules_to_evaluate(tags, _RASTER_BY_KEY):
        c = RASTER_CATEGORIES[i]
        if element_type in c.element_types:
            out[:, i] = c.rule.mask(tags)
    return out


def _rules_to_evaluate(tags: TagTable, index: dict[str, tuple[int, ...]]) -> list[int]:
    found: set[int] = set()
    for key in tags.keys_present():
        found.update(index.get(key, ()))
    return sorted(found)
