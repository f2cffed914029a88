"""What every benchmark result records about where it ran: the commit and the CPU."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def git_commit() -> str:
    """``HEAD``'s hash, marked when the working tree has uncommitted changes.

    A copy without ``.git`` (a lent GPU machine gets the working tree only) reads
    ``OLMOEARTH_GIT_COMMIT`` instead.
    """
    if not (Path(__file__).resolve().parents[1] / ".git").exists():
        return os.environ.get("OLMOEARTH_GIT_COMMIT", "unknown (no .git)") + " (copied working tree)"
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout.strip()
    return head + (" (with uncommitted changes)" if dirty else "")


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def portable_path(path: str | Path) -> str:
    """``path`` as a results file may record it: relative inside the repository, ``<scratch>/<name>``
    outside it (a reader's machine has neither this machine's ``/tmp`` nor its home)."""
    root = Path(__file__).resolve().parents[1]
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(root))
    except ValueError:
        return f"<scratch>/{resolved.name}"
