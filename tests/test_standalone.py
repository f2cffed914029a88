"""The repository stands alone: no tracked file reaches outside the checkout.

A user's clone has nothing beside it, so a tracked line naming a sibling folder (the team's reference
shelf) or an absolute path into the folder that holds this checkout would break for them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Built from parts so this file does not match its own search.
SIBLING = "../" + "shared"


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (an sdist or a copied tree): nothing tracked to scan")
    files = []
    for name in out.decode().split("\0"):
        path = REPO_ROOT / name
        if not name or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        head = path.read_bytes()[:4096]
        if b"\0" not in head:  # text only; rasters and PBFs are binary
            files.append(path)
    return files


def test_no_tracked_line_reaches_outside_the_repository() -> None:
    parent = str(REPO_ROOT.parent).rstrip("/") + "/"
    offending = []
    for path in _tracked_text_files():
        text = path.read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if SIBLING in line or parent in line:
                offending.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:120]}")
    assert not offending, "tracked lines reaching outside the checkout:\n" + "\n".join(offending)
