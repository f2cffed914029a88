"""What checking the corpus's bytes costs the loader: samples/s per worker before vs after, interleaved.

"before": the direct shard reader of a git revision without the checks (``--before-ref``, default
``HEAD``: its ``olmoearth_model/data/shards.py`` loaded as a module) on the corpus written with the
layout before chunk checksums (``--before-corpus``: inner codecs ``bytes, blosc``); "after": this
tree's reader — the shard index's crc32c and bounds checked when a shard file is opened, every chunk's
crc32c, blosc header and decoded size (``olmoearth_data.shardfile``) — on the same pixels written
with this tree's layout (``--corpus``: ``bytes, blosc, crc32c``); "after_legacy": this tree's reader
on the before-corpus (index checks only). All three build the very same batches
(``BatchDataset.batch``: crops, 10 m grid, normalisation, two masked views) in this process, one
thread, alternating batch by batch (who goes first alternates too), so a busy machine slows them
alike. Two regimes: ``warm`` keeps each reader's open shard files (and checked indexes) between
batches, as a worker on a small corpus does; ``cold`` closes them before every batch, so every shard
is reopened and its index re-read and re-checked — a worker on a corpus much larger than its LRU.

The corpora: ``--corpus`` default ``build/bench/default-32.zarr`` (``realistic_corpus.py``: real S2 of
the demo corpus under ``data/demo``, other modalities derived); ``--before-corpus`` default
``<corpus>.legacy.zarr``, written here if missing by ``realistic_corpus.py`` with the old inner
codecs. Writes ``benchmarks/results/loader_integrity_cpu.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import zarr
from provenance import cpu_name, git_commit

from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.data.reader import CorpusReader

HERE = Path(__file__).parent
REPO = HERE.parent
SHARDS = "packages/olmoearth-model/src/olmoearth_model/data/shards.py"
DEFAULT_CORPUS = Path("build/bench/default-32.zarr")


class _Unchecked:
    """The old reader behind the new reader's call (``read(box, required=…)``): ``required`` ignored."""

    def __init__(self, old: object) -> None:
        self.old = old
        self.counters = old.counters

    def read(self, box, *, required: bool = False) -> np.ndarray:
        return self.old.read(box)

    def close(self) -> None:
        self.old.close()


def _legacy_corpus(path: Path, like: Path) -> None:
    """Write ``path``: ``like``'s realistic corpus with the inner codecs before chunk checksums."""
    import realistic_corpus

    from olmoearth_data.cube import layout

    group = zarr.open_group(str(like), mode="r")
    saved = layout.DATA_CODECS
    layout.DATA_CODECS = (layout.DATA_COMPRESSOR,)
    try:
        realistic_corpus.build_realistic_corpus(
            path,
            n_samples=group["status"].shape[0],
            samples_per_shard=int(dict(group.attrs["olmoearth"])["samples_per_shard"]),
            modalities=",".join(s.name for s in CorpusReader(like).specs),
        )
    finally:
        layout.DATA_CODECS = saved


def _old_module(ref: str):
    source = subprocess.run(["git", "show", f"{ref}:{SHARDS}"], cwd=REPO, check=True, capture_output=True,
                            text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp(prefix="bench-integrity-")) / "shards_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("shards_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["shards_before"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _readers(corpus: Path, before_corpus: Path, ref: str) -> dict[str, CorpusReader]:
    before = CorpusReader(before_corpus)
    old = _old_module(ref)
    direct = {key: old.ShardedArray.from_zarr(before._arrays[key]) for key in before._direct}
    if any(d is None for d in direct.values()):
        raise SystemExit(f"error: the {ref} reader does not decode {before_corpus}'s layout")
    before._direct = {key: _Unchecked(d) for key, d in direct.items()}
    return {"before": before, "after": CorpusReader(corpus), "after_legacy": CorpusReader(before_corpus)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--before-corpus", type=Path, default=None, help="default: <corpus>.legacy.zarr")
    parser.add_argument("--before-ref", default="HEAD", help="git revision whose shard reader is 'before'")
    parser.add_argument("--batches", type=int, default=40, help="batches per reader per regime")
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "loader_integrity_cpu.json")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(
            f"error: corpus {args.corpus} not found (realistic_corpus.py builds the default)", file=sys.stderr
        )
        return 2
    before_corpus = args.before_corpus or args.corpus.with_name(args.corpus.stem + ".legacy.zarr")
    if not before_corpus.exists():
        print(f"writing {before_corpus} (the same pixels, inner codecs without crc32c) …", flush=True)
        _legacy_corpus(before_corpus, args.corpus)
    torch.set_num_threads(1)
    load_start = os.getloadavg()
    cfg = LoaderConfig(corpus=str(args.corpus), global_batch=args.global_batch)
    results = {}
    for regime in ("warm", "cold"):
        readers = _readers(args.corpus, before_corpus, args.before_ref)
        times = dict.fromkeys(readers, 0.0)
        cpu = dict.fromkeys(readers, 0.0)  # process CPU time: less sensitive to other load than wall
        samples = dict.fromkeys(readers, 0)
        for ds_reader in readers.values():  # warm-up: imports, page cache
            ds = BatchDataset(cfg, epoch=0)
            ds._reader = ds_reader
            ds.batch(0)
        done, epoch = 0, 0
        while done < args.batches:
            datasets = {}
            for name, reader in readers.items():
                datasets[name] = BatchDataset(cfg, epoch=epoch)
                datasets[name]._reader = reader
            for b in range(datasets["after"].num_batches()):
                order = list(readers)[b % 3 :] + list(readers)[: b % 3]  # who goes first rotates
                batches = {}
                for name in order:
                    if regime == "cold":
                        readers[name].close()  # every shard file reopened, its index re-read
                    t, c = time.perf_counter(), time.process_time()
                    batches[name] = datasets[name].batch(b)
                    times[name] += time.perf_counter() - t
                    cpu[name] += time.process_time() - c
                    samples[name] += batches[name].batch_size
                for key, value in batches["after"].data.items():  # same batches, same values
                    for other in ("before", "after_legacy"):
                        assert torch.equal(value, batches[other].data[key]), (key, other)
                done += 1
                if done >= args.batches:
                    break
            epoch += 1
        results[regime] = {name: round(samples[name] / times[name], 1) for name in readers}
        for name in ("after", "after_legacy"):
            cost = 100 * (1 - results[regime][name] / results[regime]["before"])
            results[regime][f"{name}_cost_pct"] = round(cost, 1)
            cost_cpu = 100 * (cpu[name] / cpu["before"] - 1)
            results[regime][f"{name}_cpu_cost_pct"] = round(cost_cpu, 1)
        results[regime]["cpu_samples_per_s"] = {name: round(samples[name] / cpu[name], 1) for name in readers}
        results[regime]["samples_each"] = samples["after"]
        counters = readers["after"].counters
        results[regime]["after_disk_bytes_per_sample"] = round(
            counters.stored_bytes / max(samples["after"], 1)
        )
    meta = dict(zarr.open_group(str(args.corpus), mode="r").attrs["olmoearth"])
    result = {
        "benchmark": "loader samples/s per worker, shard reader without (before) vs with (after) "
        "checksum and bounds checks, interleaved batch by batch in one process",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "before_ref": args.before_ref,
        "machine": {
            "platform": platform.platform(),
            "processor": cpu_name(),
            "cpus": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "corpus": str(args.corpus),
        "before_corpus": str(before_corpus),
        "samples_per_shard": meta.get("samples_per_shard"),
        "chunk_crc32c": all(
            r.fmt.chunk_crc for r in CorpusReader(args.corpus)._direct.values() if r is not None
        ),
        "modalities": [s.name for s in CorpusReader(args.corpus).specs],
        "global_batch": args.global_batch,
        "samples_per_s_one_worker": results,
        "goal": ">= 100 samples/s per worker",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
