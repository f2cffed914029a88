"""Materialise every modality of one sample and decide its status."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pystac_client

from olmoearth_data.materialise.monthly import materialise_monthly
from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.results import ModalityResult, SampleResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import SourceKind, get_source
from olmoearth_data.stac.search import SearchCache


def materialise_sample(
    *,
    index: int,
    sample: Sample,
    specs: Sequence[ModalitySpec],
    client: pystac_client.Client,
    stac_url: str,
    sign: Callable[[str], str],
    cache: SearchCache | None,
) -> SampleResult:
    """All modalities of ``sample`` (corpus row ``index``); dropped when no observation has data."""
    results: dict[str, ModalityResult] = {}
    for spec in specs:
        source = get_source(spec.name)
        if source.kind is not SourceKind.STAC or not spec.is_multitemporal:
            raise ValueError(
                f"modality {spec.name} ({source.kind.value}, {spec.temporal.value}) cannot be materialised "
                "by this version: only monthly STAC modalities are; remove it from the modality set"
            )
        results[spec.name] = materialise_monthly(
            sample=sample, spec=spec, source=source, client=client, stac_url=stac_url, sign=sign, cache=cache
        )
    observed = any(results[s.name].any_present for s in specs if not s.is_map)
    if observed:
        return SampleResult(index, SampleStatus.COMPLETE, "", results)
    return SampleResult(
        index, SampleStatus.DROPPED, "no observation (S2/S1/Landsat) data in any period", results
    )
