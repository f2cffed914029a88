"""Machine-readable reasons for missing data and sample states (see docs/corpus-schema.md)."""

from __future__ import annotations

from enum import IntEnum


class MissingReason(IntEnum):
    """Why a period (monthly modality) or a modality (static) of a sample is absent."""

    PRESENT = 0
    NO_ITEMS = 1  # the search found nothing
    ALL_NODATA = 2  # items were found, but no pixel of the tile is valid
    READ_FAILED = 3  # every item failed to read
    OUTSIDE_COVERAGE = 4  # the source does not cover this place by design (e.g. CDL outside CONUS)
    NOT_BUILT = 5  # the sample is pending or dropped

    @classmethod
    def table(cls) -> dict[str, int]:
        """``{name: code}``, stored in the corpus so readers need not import this module."""
        return {r.name.lower(): int(r) for r in cls}


class SampleStatus(IntEnum):
    """Build state of one sample row."""

    PENDING = 0
    COMPLETE = 1
    DROPPED = 2
