"""A generated catalogue on disk, and the content-addressed cache it lives in.

Layout of one catalogue folder ``<cache_dir>/<name>-<key>/``::

    stac/collections.ndjson    collection documents (one JSON per line)
    stac/items.ndjson          item documents, hrefs are real PC blob URLs
    stac/queryables/<collection>.json   queryables (JSON Schema) pgstac reads property types from
    blobs/<account>/<container>/<blob path>   the files those hrefs point to
    manifest.json              what was generated (see the generator's docstring)
    COMPLETE                   written last: a folder without it is an interrupted build

``key`` hashes everything that determines the output (generator version and source code, sample table,
seed, fixture file hashes), so a second run with the same inputs reuses the folder instantly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMPLETE_MARKER = "COMPLETE"


@dataclass(frozen=True)
class Catalog:
    """One generated catalogue folder (see the module docstring for its layout)."""

    root: Path

    @property
    def collections_path(self) -> Path:
        return self.root / "stac" / "collections.ndjson"

    @property
    def items_path(self) -> Path:
        return self.root / "stac" / "items.ndjson"

    @property
    def blobs_dir(self) -> Path:
        """Folder served by the blob server: ``<account>/<container>/<blob path>`` below it."""
        return self.root / "blobs"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def queryables_dir(self) -> Path:
        return self.root / "stac" / "queryables"

    def queryables(self) -> dict[str, dict[str, Any]]:
        """Collection id → queryables document."""
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.queryables_dir.glob("*.json"))}

    def collections(self) -> list[dict[str, Any]]:
        return list(_read_ndjson(self.collections_path))

    def items(self) -> list[dict[str, Any]]:
        return list(_read_ndjson(self.items_path))

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text())

    def storage(self) -> dict[str, tuple[str, str]]:
        """Collection id → (``msft:storage_account``, ``msft:container``), for the SAS stand-in."""
        return {
            c["id"]: (c["msft:storage_account"], c["msft:container"])
            for c in self.collections()
            if "msft:storage_account" in c and "msft:container" in c
        }


def _read_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def write_ndjson(*, path: Path, records: list[dict[str, Any]]) -> None:
    """Write one compact JSON document per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")


def cache_key(*, inputs: dict[str, Any]) -> str:
    """16 hex chars of SHA-256 over the canonical JSON of ``inputs``."""
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cached_build(
    *, cache_dir: Path, name: str, inputs: dict[str, Any], build: Callable[[Path], None]
) -> Catalog:
    """Return the catalogue for ``inputs``, building it with ``build(tmp_folder)`` only if absent.

    The build runs in a temporary sibling folder that is renamed into place once complete, so an
    interrupted or concurrent build never leaves a half-written catalogue under the final name.
    """
    final = Path(cache_dir).absolute() / f"{name}-{cache_key(inputs=inputs)}"
    if (final / COMPLETE_MARKER).is_file():
        return Catalog(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        build(tmp)
        (tmp / "inputs.json").write_text(json.dumps(inputs, indent=1, sort_keys=True, default=str))
        (tmp / COMPLETE_MARKER).write_text("ok\n")
        if (final / COMPLETE_MARKER).is_file():  # a concurrent build won the race
            shutil.rmtree(tmp)
        else:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Catalog(final)
