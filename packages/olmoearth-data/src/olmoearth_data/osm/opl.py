"""The C++ half of the pass: pyosmium handler chains that write matching elements as OPL text, and the
vectorised reader of that text.

No element is handed to Python one by one. A chain ``Reader → [NodeLocationsForWays] → KeyFilter →
SimpleWriter(OPL)`` runs entirely in libosmium (:func:`write_opl`); :func:`read_opl` then parses the OPL
file in record batches with pyarrow's CSV reader and compute kernels. OPL (one line per object,
space-separated fields, ``%hex%`` escapes for special characters) with ``add_metadata=false`` has a
fixed number of fields per object type, so a file holding one type parses as a CSV table:

* node: ``n<id> T<k=v,...> x<lon> y<lat>`` (``x``/``y`` empty when the location is invalid)
* way: ``w<id> T<k=v,...> N<n<ref>,n<ref>,...>``
* relation: ``r<id> T<k=v,...> M<w<ref>@<role>,...>``
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import osmium
import osmium.filter
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from olmoearth_data.osm.categories import RELEVANT_KEYS

OPL_FORMAT = "opl,add_metadata=false"
_FIELDS = {"n": ["id", "tags", "x", "y"], "w": ["id", "tags", "nodes"], "r": ["id", "tags", "members"]}
_KEY_ORDER = tuple(sorted(RELEVANT_KEYS))


def key_filter() -> osmium.filter.KeyFilter:
    """C++ filter passing elements with at least one key some category rule anchors on."""
    return osmium.filter.KeyFilter(*_KEY_ORDER)


def write_opl(
    *, source: osmium.io.File | osmium.io.FileBuffer | str, entities: osmium.osm.osm_entity_bits,
    out: Path, locations: osmium.index.LocationTable | None = None,
    thread_pool: osmium.io.ThreadPool | None = None,
) -> None:  # fmt: skip
    """Write every element of ``source`` (restricted to ``entities``) with a relevant key to ``out`` (OPL).

    With ``locations`` given, every node read (tagged or not) is first stored in that location table
    (so ways read later can be located). Runs in C++ only; raises ``RuntimeError`` on unreadable input.
    """
    pool = thread_pool or osmium.io.ThreadPool()
    # pyosmium's iterators/apply do not keep handlers alive: hold references until apply returns.
    handlers: list = []
    if locations is not None:
        lh = osmium.NodeLocationsForWays(locations)
        lh.ignore_errors()
        handlers.append(lh)
    handlers.append(key_filter())
    writer = osmium.SimpleWriter(osmium.io.File(str(out), OPL_FORMAT), overwrite=True, thread_pool=pool)
    handlers.append(writer)
    try:
        with osmium.io.Reader(source, entities, thread_pool=pool) as reader:
            osmium.apply(reader, *handlers)
    finally:
        writer.close()


def read_opl(path: Path, kind: str, *, block_bytes: int = 16 << 20) -> Iterator[pa.RecordBatch]:
    """Record batches (string columns, see the module doc) of an OPL file holding only ``kind`` objects.

    ``kind`` is ``"n"``, ``"w"`` or ``"r"``; ``block_bytes`` bounds the text parsed per batch (it must
    exceed the longest line: a way of 2,000 nodes is ~20 kB, large relations ~1 MB).
    """
    if path.stat().st_size == 0:
        return
    names = _FIELDS[kind]
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, block_size=block_bytes, use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False, double_quote=False,
                                         escape_char=False),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                             strings_can_be_null=False),
    )  # fmt: skip
    yield from reader


def strip1(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Drop the one-letter field prefix (``T``, ``N``, ``x``, ``n`` of the id, …)."""
    return pc.utf8_slice_codeunits(col, 1)


def parse_ids(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``n123``/``w-5`` → int64 ids."""
    return pc.cast(strip1(col), pa.int64()).to_numpy()


def parse_coord(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """``x26.9`` (or ``x`` for an invalid location) → (float64 degrees, valid mask)."""
    s = strip1(col)
    valid = pc.greater(pc.binary_length(s), 0)
    vals = pc.cast(pc.if_else(valid, s, "0"), pa.float64()).to_numpy()
    return vals, valid.to_numpy(zero_copy_only=False)


def parse_refs(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Way node lists ``Nn1,n2,...`` → (int64 refs, int64 offsets ``[n_ways + 1]``)."""
    lists = pc.split_pattern(pc.replace_substring(strip1(col), "n", ""), ",")
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    flat = pc.list_flatten(lists)
    nonempty = pc.greater(pc.binary_length(flat), 0).to_numpy(zero_copy_only=False)
    counts = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    if not nonempty.all():  # a way without nodes is written as ``N``: one empty token
        parents = pc.list_parent_indices(lists).to_numpy()
        counts -= np.bincount(parents[~nonempty], minlength=len(counts))
        flat = pc.filter(flat, pa.array(nonempty))
    refs = pc.cast(flat, pa.int64()).to_numpy()
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return refs, offsets


def parse_way_members(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Relation member lists ``Mw1@outer,n2@,...`` → (way ids, index of the relation of each)."""
    lists = pc.split_pattern(strip1(col), ",")
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    is_way = pc.starts_with(flat, "w").to_numpy(zero_copy_only=False)
    if not is_way.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ways = pc.filter(flat, pa.array(is_way))
    ids = pc.list_element(pc.split_pattern(strip1(ways), "@", max_splits=1), 0)
    return pc.cast(ids, pa.int64()).to_numpy(), parents[is_way]
