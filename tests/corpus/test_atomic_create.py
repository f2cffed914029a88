"""Creating the corpus is atomic: a full disk or a Ctrl-C during creation leaves nothing a rerun trips
over (issue 14, item 6).

The full disk is real: a 16 KiB tmpfs mounted under the test's folder (root in a container that may
mount), else a ``RLIMIT_FSIZE`` of 4 KiB on the build process (its first metadata file over that size
fails with ``EFBIG``, as a write on a full disk fails with ``ENOSPC``). The Ctrl-C is a real SIGINT sent
to ``olmoearth-data build`` as soon as its staging folder appears. Each time the build says so in one
line, no store is left at the corpus path, and a rerun (the disk grown back) equals a clean build.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zarr

from olmoearth_data.cli import main
from olmoearth_data.cube.layout import create_corpus
from olmoearth_data.modalities import modality_set
from olmoearth_data.samples import write_sample_table
from olmoearth_twin import Catalog, Twin

from .build_helpers import KEY, SAMPLES, build_args, cluster, corpus_checksums, subscription_key

pytestmark = [pytest.mark.twin]

MODALITIES = "sentinel1,srtm"


class Env:
    def __init__(self, twin: Twin, work: Path, scheduler: str) -> None:
        self.twin, self.work, self.scheduler = twin, work, scheduler
        self.table = work / "samples.parquet"
        write_sample_table(self.table, samples=SAMPLES[:1])

    def args(self, corpus: Path) -> list[str]:
        return build_args(corpus=corpus, table=self.table, cache=self.work / "cache",
                          scheduler=self.scheduler, stac_url=self.twin.stac_url,
                          blob_endpoint=self.twin.assets_url, sas_url=self.twin.sas_url,
                          modalities=MODALITIES, samples_per_shard=1)  # fmt: skip

    def cli(
        self, corpus: Path, *, preexec: Callable[[], None] | None = None, sigint_in_creation: bool = False
    ) -> subprocess.Popen:
        """``olmoearth-data build`` in a process of its own (signals, resource limits).

        SIGINT is reset to its default first (a test run started in the background by a non-interactive
        shell inherits it ignored). ``sigint_in_creation``: the process sends itself a real SIGINT when
        it makes its third folder inside the staging store, i.e. in the middle of creation (an audit
        hook sees the ``mkdir``); polling for that window from outside missed it on a loaded machine.
        """

        def child() -> None:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if preexec is not None:
                preexec()

        env = {**os.environ, "PC_SDK_SUBSCRIPTION_KEY": KEY}
        boot = ["-m", "olmoearth_data.cli"] if not sigint_in_creation else ["-c", _SIGINT_IN_CREATION]
        cmd = [sys.executable, *boot, *self.args(corpus)]
        return subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=child
        )


#: Runs the CLI after installing an audit hook that interrupts creation from inside (see Env.cli).
_SIGINT_IN_CREATION = """
import os, runpy, signal, sys
made = []
def hook(event, args):
    if event == "os.mkdir" and ".creating-" in str(args[0]):
        made.append(args[0])
        if len(made) == 3:
            os.kill(os.getpid(), signal.SIGINT)
sys.addaudithook(hook)
sys.argv[0] = "olmoearth-data"
runpy.run_module("olmoearth_data.cli", run_name="__main__")
"""


@pytest.fixture(scope="module")
def env(twin: Twin, twin_collections: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with subscription_key(), cluster() as scheduler:
        yield Env(twin, tmp_path_factory.mktemp("atomic"), scheduler)


@pytest.fixture(scope="module")
def clean(env: Env) -> Path:
    corpus = env.work / "clean.zarr"
    assert main(env.args(corpus)) == 0
    return corpus


def _staging(corpus: Path) -> list[Path]:
    return sorted(corpus.parent.glob(f".{corpus.name}.creating-*"))


@contextmanager
def _small_disk(where: Path) -> Iterator[bool]:
    """A 16 KiB tmpfs at ``where`` (yields True; remounted at 64 MiB by :func:`_grow`), or nothing
    (False) where this process may not mount."""
    where.mkdir(parents=True)
    if os.geteuid() != 0:
        yield False
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _grow(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(where)], check=True)


def _limit_file_size() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_full_disk_during_creation_says_so_and_a_rerun_completes(env: Env, clean: Path, capsys) -> None:
    disk = env.work / "disk"
    with _small_disk(disk) as tmpfs:
        corpus = disk / "full.zarr"
        if tmpfs:
            capsys.readouterr()
            code, err = main(env.args(corpus)), capsys.readouterr().err
        else:  # the limit must not hit this (pytest's) process
            proc = env.cli(corpus, preexec=_limit_file_size)
            err = proc.communicate(timeout=120)[1]
            code = proc.returncode
        assert code == 2, err
        lines = [line for line in err.splitlines() if line.startswith("olmoearth-data: error:")]
        assert len(lines) == 1 and "no space left on device while creating the corpus" in lines[0], err
        assert "Traceback" not in err
        assert not corpus.exists() and not _staging(corpus), "a partial store was left behind"
        if tmpfs:
            _grow(disk)
        assert main(env.args(corpus)) == 0
        assert corpus_checksums(corpus) == corpus_checksums(clean)


def test_ctrl_c_during_creation_leaves_nothing_and_a_rerun_completes(env: Env, clean: Path) -> None:
    corpus = env.work / "interrupted.zarr"
    proc = env.cli(corpus, sigint_in_creation=True)
    _, err = proc.communicate(timeout=120)
    assert not corpus.exists() and not _staging(corpus), "a partial store was left behind"
    assert proc.returncode == 130 and "interrupted: rerun the same command" in err, err
    assert main(env.args(corpus)) == 0
    assert not _staging(corpus)
    assert corpus_checksums(corpus) == corpus_checksums(clean)


def test_a_partial_skeleton_from_an_older_build_is_created_again(env: Env, clean: Path) -> None:
    """A store an interrupted non-atomic creation left (root metadata, some arrays, nothing built)."""
    corpus = env.work / "legacy.zarr"
    create_corpus(corpus, samples=SAMPLES[:1], specs=modality_set(MODALITIES), samples_per_shard=1)
    for name in ("status", "sentinel1/10m"):
        for path in sorted((corpus / name).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (corpus / name).rmdir()
    with pytest.raises(KeyError):
        zarr.open_group(str(corpus), mode="r", use_consolidated=False)["status"]
    assert main(env.args(corpus)) == 0
    assert corpus_checksums(corpus) == corpus_checksums(clean)


#: Creates a small corpus 8 times, each interrupted by a real SIGINT at the Nth folder made in the
#: staging store (N = 3, 5, 10, 20, …), and prints how many staging stores were still there 0.5 s later.
_REPEATED_INTERRUPTS = """
import os, shutil, signal, sys, tempfile, time
from pathlib import Path
from olmoearth_data.cube.layout import create_corpus
from olmoearth_data.modalities import modality_set
sys.path.insert(0, sys.argv[1])
from tests.corpus.build_helpers import SAMPLES
sample = SAMPLES[0]
made, at = [], [0]
def hook(event, args):
    if event == "os.mkdir" and ".creating-" in str(args[0]):
        made.append(args[0])
        if len(made) == at[0]:
            os.kill(os.getpid(), signal.SIGINT)
sys.addaudithook(hook)
left = 0
for n in (3, 5, 10, 20, 3, 5, 10, 20):
    made.clear(); at[0] = n
    work = Path(tempfile.mkdtemp())
    try:
        create_corpus(work / "c.zarr", samples=[sample], specs=modality_set("default"), samples_per_shard=1)
    except KeyboardInterrupt:
        pass
    time.sleep(0.5)
    left += any(work.glob(".c.zarr.creating-*")) or (work / "c.zarr").exists() and len(made) > n
    shutil.rmtree(work)
print(left)
"""


def test_an_interrupt_never_leaves_the_staging_store_behind() -> None:
    """zarr writes on its own I/O thread: a Ctrl-C ends the wait, not the writes, which recreated the
    staging folder after its removal in 1–5 of 10 tries (cube/staging.py); none may be left now."""
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-c", _REPEATED_INTERRUPTS, root], capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "0", proc.stdout + proc.stderr[-2000:]
