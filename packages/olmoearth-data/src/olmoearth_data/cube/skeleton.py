"""An existing corpus before a build resumes it: is its skeleton whole, and does it hold every modality?

* :func:`skeleton_problems` — what an existing store lacks (root attributes, ``status``, a modality's
  arrays). A corpus created by :func:`~olmoearth_data.cube.layout.create_corpus` is whole by
  construction (atomic rename); a store left by an interrupted creation of an older version is not,
  and :func:`interrupted_creation` tells it apart from a store that holds built data.
* :func:`add_modalities` — widening: a rerun asking for modalities the corpus lacks gets them. Their
  groups are written under a hidden staging store and each renamed into the corpus whole, then every
  sample is marked ``PENDING`` (each needs the new modalities; the build materialises only what a
  sample lacks, see :func:`modalities_to_build`), and only then the corpus's modality registry is
  extended. A build killed anywhere in between redoes the missing steps on the next run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from olmoearth_data.cube.layout import (
    Chunking,
    CorpusLayout,
    consolidate,
    remove_staging,
    staging_path,
    write_modality_skeleton,
)
from olmoearth_data.cube.staging import discard_staging
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import ModalitySpec, registry_from_dict, registry_to_dict
from olmoearth_data.outages import PENDING_PREFIX

log = logging.getLogger(__name__)


def _root_attrs(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    attrs = doc.get("attributes", {}).get("olmoearth")
    return attrs if isinstance(attrs, dict) else None


def skeleton_problems(path: Path | str) -> list[str]:
    """What the store at ``path`` lacks to be a whole corpus skeleton (empty: nothing)."""
    path = Path(path)
    meta = _root_attrs(path)
    if meta is None or "modalities" not in meta or "samples_per_shard" not in meta:
        return ["no corpus metadata in its root zarr.json"]
    need = ["status", "status_reason", "tile_id"]
    for spec in registry_from_dict(meta["modalities"]):
        need += [f"{spec.name}/present", f"{spec.name}/reason"]
        need += [f"{spec.name}/{bs.name}/data" for bs in spec.bandsets]
    return [f"array {n!r} missing" for n in need if not (path / n / "zarr.json").is_file()]


def interrupted_creation(path: Path | str) -> bool:
    """Whether ``path`` is an incomplete skeleton with nothing built in it: our root metadata, and no
    ``status`` chunk (only a build task writes one), so recreating it loses nothing."""
    path = Path(path)
    return _root_attrs(path) is not None and not (path / "status" / "c").exists()


def chunking_from_dict(doc: dict[str, Any] | None) -> Chunking:
    """The :class:`Chunking` stored in a corpus's attributes (default when absent)."""
    if not doc:
        return Chunking()
    return Chunking(
        monthly_periods=int(doc["monthly_periods"]),
        monthly_px=tuple((float(a), int(b)) for a, b in doc["monthly_px"]),
        static_px=tuple((float(a), int(b)) for a, b in doc["static_px"]),
        other_px=int(doc["other_px"]),
    )


def add_modalities(
    path: Path | str, *, specs: Sequence[ModalitySpec], layout: CorpusLayout, attrs: dict[str, Any]
) -> None:
    """Add ``specs`` (modalities the corpus lacks) to the corpus at ``path`` and mark every sample
    pending; ``attrs`` are merged into the root ``olmoearth`` attributes last (e.g. ``sources``).

    Idempotent: a group already in the corpus (moved there by an interrupted earlier call) is kept.
    """
    path = Path(path)
    root = zarr.open_group(str(path), mode="r")
    meta = dict(root.attrs["olmoearth"])
    georef = {name: root[name][:] for name in ("x0", "y0", "epsg")}
    chunking = chunking_from_dict(meta.get("chunking"))
    remove_staging(path, kind="adding")
    staging = staging_path(path, kind="adding")
    try:
        zarr.open_group(str(staging), mode="w", zarr_format=3)
        for spec in specs:
            if not (path / spec.name).exists():
                write_modality_skeleton(staging, spec=spec, layout=layout, chunking=chunking, georef=georef)
                os.rename(staging / spec.name, path / spec.name)  # whole, or not at all
    except BaseException:
        discard_staging(staging)  # after zarr's in-flight writes: they could recreate it
        raise
    shutil.rmtree(staging, ignore_errors=True)
    consolidate(path)  # readers of consolidated metadata see the new groups
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    names = ", ".join(s.name for s in specs)
    group["status_reason"][:] = np.array(
        [f"pending: modalities added ({names})"] * layout.n_samples, dtype=object
    )
    group["status"][:] = np.full(layout.n_samples, int(SampleStatus.PENDING), dtype=np.int8)
    stored = registry_from_dict(meta["modalities"])
    meta["modalities"] = registry_to_dict(
        (*stored, *[s for s in specs if s.name not in {x.name for x in stored}])
    )
    for key, value in attrs.items():
        meta[key] = {**meta.get(key, {}), **value} if isinstance(value, dict) else value
    group.attrs["olmoearth"] = meta
    consolidate(path)
    log.warning("corpus %s: added modalities %s; every sample is pending until it has them", path, names)


def modalities_to_build(
    group: zarr.Group, *, specs: Sequence[ModalitySpec], start: int, stop: int
) -> list[ModalitySpec]:
    """The modalities a pending shard ``[start, stop)`` must materialise; the others keep what is stored.

    A pending sample whose ``status_reason`` starts with :data:`~olmoearth_data.outages.
    PENDING_PREFIX` was written by a build that stopped it on purpose (an outage, added modalities):
    its modalities whose ``reason`` is not ``NOT_BUILT`` everywhere were written whole (a modality's
    ``reason`` is written after its data) and are kept. Any other pending sample — never built,
    killed mid-write, reset as damaged by ``olmoearth-data verify`` — needs every modality.
    """
    pending = group["status"][start:stop] == SampleStatus.PENDING
    marked = np.array([str(r).startswith(PENDING_PREFIX) for r in group["status_reason"][start:stop]])
    if (pending & ~marked).any():
        return list(specs)
    out = []
    for spec in specs:
        reason = np.asarray(group[f"{spec.name}/reason"][start:stop]).reshape(stop - start, -1)
        unbuilt = (reason == MissingReason.NOT_BUILT).all(axis=1)
        if (pending & unbuilt).any():
            out.append(spec)
    return out
