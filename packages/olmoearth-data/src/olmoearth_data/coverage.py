"""Which samples a corpus's norm stats were computed over, so stale stats are refused, not used.

``olmoearth-data stats`` stores, beside each modality's ``norm_stats``, a ``norm_stats_coverage``
record of the complete samples it read (:func:`stats_coverage`). The set changes when samples are
built, dropped or reset for a rebuild (``olmoearth-data verify --reset``); the loader compares the
record with the corpus's current ``status`` (:func:`check_stats_coverage`) and refuses stats computed
over another set of samples.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from olmoearth_data.missing import SampleStatus

log = logging.getLogger(__name__)

#: Attribute of a modality group that holds its stats' coverage record.
COVERAGE_ATTR = "norm_stats_coverage"


class StaleStatsError(ValueError):
    """Norm stats computed over other samples than the corpus's complete samples now."""


def stats_coverage(status: np.ndarray) -> dict[str, Any]:
    """The coverage record of the complete samples of ``status`` (int8 ``[N]`` :class:`SampleStatus`).

    ``{"samples": N, "complete": n, "sha256": hex}``: the row count, the complete count and the
    SHA-256 of the packed complete mask (bit ``i`` = row ``i`` complete).
    """
    complete = np.asarray(status) == SampleStatus.COMPLETE
    digest = hashlib.sha256(np.packbits(complete).tobytes()).hexdigest()
    return {"samples": int(complete.size), "complete": int(complete.sum()), "sha256": digest}


def check_stats_coverage(
    *, recorded: Mapping[str, Any] | None, status: np.ndarray, corpus: str, modality: str
) -> None:
    """Raise :class:`StaleStatsError` unless ``recorded`` covers exactly the complete rows of ``status``.

    ``recorded`` ``None`` (stats written before coverage was recorded) cannot be judged: a warning,
    no error.
    """
    if recorded is None:
        log.warning(
            "norm stats of %s in %s record no coverage; rerun `olmoearth-data stats` to check",
            modality,
            corpus,
        )
        return
    now = stats_coverage(status)
    if dict(recorded) != now:
        raise StaleStatsError(
            f"norm stats of {modality} in corpus {corpus} are stale: computed over "
            f"{recorded.get('complete')} complete samples of {recorded.get('samples')}, the corpus now "
            f"has {now['complete']} of {now['samples']} (another set); rerun `olmoearth-data stats {corpus}`"
        )
