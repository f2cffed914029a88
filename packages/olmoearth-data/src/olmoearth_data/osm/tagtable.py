"""Tags of a batch of OSM elements as columns, so category rules are evaluated per batch, not per element.

A :class:`TagTable` keeps, for every key some category rule reads
(:data:`~olmoearth_data.osm.categories.RULE_KEYS`), the rows (element indices in the batch) carrying that
key and their values; all other tags are dropped. It is built from the tag field of OPL lines
(``k=v,k=v``, special characters escaped as ``%hex%``), which the C++ pass writes, or from Python
mappings (assembled areas, tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from olmoearth_data.osm.categories import RULE_KEYS

_ESCAPE = re.compile(r"%([0-9a-fA-F]+)%")
_KEYS = sorted(RULE_KEYS)
_KEY_ARRAY = pa.array(_KEYS, type=pa.string())


def opl_unescape(text: str) -> str:
    """Decode OPL's ``%hex%`` escapes (``a%20%b`` → ``a b``)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


class TagTable:
    """Rule-relevant tags of ``n`` elements: per key, ascending rows (int64) and their values (strings)."""

    def __init__(self, n: int, columns: Mapping[str, tuple[np.ndarray, pa.Array]]) -> None:
        self.n = n
        self._cols = {k: v for k, v in columns.items() if len(v[0])}

    @classmethod
    def from_opl(cls, tags: pa.Array | pa.ChunkedArray, keys: Sequence[str] = _KEYS) -> TagTable:
        """From OPL tag fields without the leading ``T`` (one string per element, ``""`` for none)."""
        if isinstance(tags, pa.ChunkedArray):
            tags = tags.combine_chunks()
        n = len(tags)
        lists = pc.split_pattern(tags, ",")
        parents = pc.list_parent_indices(lists).to_numpy()
        kv = pc.split_pattern(pc.list_flatten(lists), "=", max_splits=1)
        key_array = _KEY_ARRAY if keys is _KEYS else pa.array(sorted(keys), type=pa.string())
        code = pc.index_in(pc.list_element(kv, 0), value_set=key_array)
        keep = pc.is_valid(code)
        code_np = pc.filter(code, keep).to_numpy()
        rows = parents[keep.to_numpy(zero_copy_only=False)]
        values = pc.list_element(pc.filter(kv, keep), 1)
        if len(values) and pc.any(pc.match_substring(values, "%")).as_py():
            values = pa.array(
                [opl_unescape(v) if "%" in v else v for v in values.to_pylist()], type=pa.string()
            )
        order = np.argsort(code_np, kind="stable")
        code_sorted = code_np[order]
        bounds = np.searchsorted(code_sorted, np.arange(len(key_array) + 1))
        columns = {}
        names = key_array.to_pylist()
        for j, name in enumerate(names):
            sel = order[bounds[j] : bounds[j + 1]]
            if len(sel):
                columns[name] = (rows[sel], values.take(pa.array(sel)))
        return cls(n, columns)

    @classmethod
    def from_dicts(cls, dicts: Sequence[Mapping[str, str]], keys: Iterable[str] = _KEYS) -> TagTable:
        """From one tag mapping per element (small batches: assembled areas, tests)."""
        columns = {}
        for key in keys:
            rows = [i for i, d in enumerate(dicts) if key in d]
            if rows:
                columns[key] = (
                    np.asarray(rows, dtype=np.int64),
                    pa.array([dicts[i][key] for i in rows], type=pa.string()),
                )
        return cls(len(dicts), columns)

    def keys_present(self) -> list[str]:
        """Keys at least one element carries."""
        return list(self._cols)

    def _mask(self, key: str, hit: pa.Array | None) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        col = self._cols.get(key)
        if col is not None:
            rows, _ = col
            out[rows if hit is None else rows[hit.to_numpy(zero_copy_only=False)]] = True
        return out

    def equals(self, key: str, value: str) -> np.ndarray:
        """bool ``[n]``: the element has ``key=value``."""
        col = self._cols.get(key)
        return self._mask(key, None if col is None else pc.fill_null(pc.equal(col[1], value), False))

    def present(self, key: str) -> np.ndarray:
        """bool ``[n]``: the element has ``key`` with a non-empty value (OSM's ``key=*``)."""
        col = self._cols.get(key)
        return self._mask(key, None if col is None else pc.greater(pc.binary_length(col[1]), 0))

    def isin(self, key: str, values: Iterable[str]) -> np.ndarray:
        """bool ``[n]``: the element's ``key`` value is one of ``values``."""
        col = self._cols.get(key)
        if col is None:
            return np.zeros(self.n, dtype=bool)
        hit = pc.fill_null(pc.is_in(col[1], value_set=pa.array(sorted(values), type=pa.string())), False)
        return self._mask(key, hit)

    def values(self, key: str) -> pa.Array:
        """The ``key`` value of every element (string array of length ``n``, null where absent)."""
        col = self._cols.get(key)
        if col is None:
            return pa.nulls(self.n, type=pa.string())
        rows, vals = col
        idx = np.full(self.n, -1, dtype=np.int64)
        idx[rows] = np.arange(len(rows))
        return vals.take(pa.array(idx, mask=idx < 0))
