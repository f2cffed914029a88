"""Checks a command runs before any work: every refusal happens in seconds and writes nothing.

A build on a planet file runs for hours; a missing key, a typo in ``--stac-url``, an unwritable
output folder or a negative count must stop it before the first byte is written, not after the OSM
pass or in seven dask tracebacks. Each check raises :class:`PreflightError` (a ``ValueError``) with one line
naming the problem and its fix; the command lines print it as ``prog: error: …`` and exit 2
(:mod:`olmoearth_data.cli_errors`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class PreflightError(ValueError):
    """A preflight check failed: nothing was started or written. The message is one line."""


def require_range(*, name: str, value: float, low: float | None = None, high: float | None = None) -> None:
    """Refuse ``value`` outside ``[low, high]`` (either bound optional), naming the option ``name``."""
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            wanted = f"≥ {low:g}"
        elif low is None:
            wanted = f"≤ {high:g}"
        else:
            wanted = f"between {low:g} and {high:g}"
        raise PreflightError(f"{name} must be {wanted}, got {value:g}")


def require_input(*, path: Path | str, what: str, hint: str = "") -> Path:
    """The path of an input that must exist (file or folder); ``hint`` says how to make one."""
    p = Path(path)
    if not p.exists():
        raise PreflightError(f"{what} {p} does not exist" + (f"; {hint}" if hint else ""))
    return p


def require_writable(*, path: Path | str, what: str) -> Path:
    """Refuse an output path whose nearest existing folder cannot be written (nothing is created).

    The path itself need not exist (commands create it and its parents); an existing parent that is
    a file, or a read-only folder, is refused now rather than after the work it would hold.
    """
    p = Path(path)
    probe = p if p.is_dir() else p.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise PreflightError(f"{what} {p}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PreflightError(f"{what} {p}: folder {probe} is not writable")
    return p


def require_stac_reachable(*, url: str, timeout_s: float = 10.0) -> None:
    """One request to the STAC API's landing page; refuse if nothing answers, or not a STAC catalogue.

    One GET with ``timeout_s`` and no retries: a wrong host or port fails in seconds with its cause,
    where the build's retrying clients would spend minutes per worker before giving up. A 429 or 5xx
    passes: the API is there, and riding out an outage is the build's job (samples stay pending).
    """
    import requests  # here, not at import: --help stays fast

    try:
        response = requests.get(url, timeout=timeout_s, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        reason = type(exc).__name__
        if isinstance(exc, requests.ConnectionError):
            reason = "connection failed (wrong host or port, or no network?)"
        elif isinstance(exc, requests.Timeout):
            reason = f"no answer within {timeout_s:g} s"
        raise PreflightError(f"STAC API {url} unreachable: {reason}; check --stac-url") from None
    if response.status_code == 429 or response.status_code >= 500:
        return  # there, but busy or failing: the build's retries and pending samples handle outages
    if response.status_code >= 400:
        raise PreflightError(f"STAC API {url} answered HTTP {response.status_code}; check --stac-url")
    try:
        landing = response.json()
    except ValueError:
        landing = None
    if not isinstance(landing, dict) or (landing.get("type") != "Catalog" and "links" not in landing):
        raise PreflightError(f"{url} answered, but not with a STAC API landing page; check --stac-url")


def account_collections(*, modalities: str | Iterable[str]) -> list[str]:
    """STAC collections of ``modalities`` (a set name or names) that need a Planetary Computer account."""
    from olmoearth_data.modalities import modality_set
    from olmoearth_data.sources import get_source

    specs = modality_set(modalities if isinstance(modalities, str) else list(modalities))
    return sorted({get_source(s.name).collection for s in specs if get_source(s.name).requires_account})


def require_account_key(*, modalities: str | Iterable[str], signing: str) -> None:
    """Refuse account-gated collections without ``PC_SDK_SUBSCRIPTION_KEY`` when signing for PC.

    ``signing`` is the catalogue's signing mode (``"planetary_computer"`` or ``"none"``).
    """
    if signing != "planetary_computer" or os.environ.get("PC_SDK_SUBSCRIPTION_KEY"):
        return
    collections = account_collections(modalities=modalities)
    if collections:
        raise PreflightError(
            f"collections {collections} need a Planetary Computer account: set PC_SDK_SUBSCRIPTION_KEY "
            "(https://planetarycomputer.microsoft.com/account/request) or leave these modalities out"
        )
