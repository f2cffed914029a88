"""Nothing secret is persisted or printed (issue 14, item 2).

A build is given every kind of credential a real one meets — ``user:password@`` in the STAC URL, a
SAS-signed ``--tile-index`` URL, a PC subscription key (Sentinel-1 RTC needs one), SAS-signed asset
reads — and then every output is scanned: each file the build wrote (Zarr metadata and chunks, the
index and its fragments, the search cache), what the CLI and its dask workers printed, and every log
record, at DEBUG, of a materialisation through a fault proxy (failed reads make libraries log the
URLs they opened; pystac-client logs its request headers).
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
import rasterio

from olmoearth_data.build import GDAL_OPTIONS
from olmoearth_data.cli import main
from olmoearth_data.materialise.sample import materialise_sample
from olmoearth_data.modalities import modality_set
from olmoearth_data.samples import write_sample_table
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_data.stac.tile_index import TileIndexRef
from olmoearth_twin import Catalog, FaultConfig, FaultProxy, Twin
from olmoearth_twin.full import tile_index_refs

from .build_helpers import KEY, SAMPLES, subscription_key

pytestmark = [pytest.mark.twin]

USERINFO = "olmo:hunter2-do-not-persist"
TILE_SIG = "TILEINDEXSIGNATURE0123456789"
MODALITIES = "sentinel1,wri_canopy_height_map"
#: What must never appear: the password, the userinfo, its Basic-auth form, SAS signatures, the key.
SECRETS = ("hunter2", USERINFO, base64.b64encode(USERINFO.encode()).decode(), "sig=", TILE_SIG, KEY)


def _with_userinfo(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{USERINFO}@{rest}"


def _signed_index(ref: TileIndexRef) -> TileIndexRef:
    return TileIndexRef(url=f"{ref.url}?sv=2021-06-08&se=2030-01-01&sp=r&sig={TILE_SIG}", base=ref.base)


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_a_build_persists_and_prints_no_credential(
    twin: Twin, twin_collections: Catalog, twin_maps: Catalog, tmp_path: Path, capfd
) -> None:
    table, corpus = tmp_path / "samples.parquet", tmp_path / "secrets.zarr"
    write_sample_table(table, samples=SAMPLES[:1])
    ref = _signed_index(tile_index_refs(twin=twin, maps=twin_maps)["wri-canopy-height"])
    args = [
        "build", "--samples", str(table), "--corpus", str(corpus), "--modalities", MODALITIES,
        "--samples-per-shard", "1", "--workers", "1", "--cache-dir", str(tmp_path / "cache"),
        "--stac-url", _with_userinfo(twin.stac_url), "--blob-endpoint", twin.assets_url,
        "--tile-index", f"wri-canopy-height={ref.url}@{ref.base}", "--retries", "2", "--backoff-s", "0.01",
    ]  # fmt: skip
    with subscription_key():
        code = main(args)
    out = capfd.readouterr()
    assert code == 0, out.err
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != table]
    assert any(p.name == "zarr.json" for p in files) and any(p.suffix == ".parquet" for p in files)
    assert any("cache" in p.parts for p in files), "the search cache was not written: nothing scanned"
    leaks = {str(p.relative_to(tmp_path)): _leaks(p.read_bytes().decode("latin-1")) for p in files}
    assert not {k: v for k, v in leaks.items() if v}, leaks
    assert not _leaks(out.out + out.err), _leaks(out.out + out.err)
    # What was saved still says where the data came from, minus the credentials.
    root = (corpus / "zarr.json").read_text()
    assert twin.stac_url in root and ref.url.split("?")[0] in root


def test_logs_carry_no_credential_even_at_debug(
    twin: Twin, twin_collections: Catalog, twin_maps: Catalog, tmp_path: Path, caplog
) -> None:
    blobs = FaultProxy(
        upstream=twin.direct_assets_url, config=FaultConfig(rate=0.3, seed=5, kinds=("503", "reset"))
    )
    blobs.start()
    refs = tile_index_refs(twin=twin, maps=twin_maps)
    refs["wri-canopy-height"] = _signed_index(refs["wri-canopy-height"])
    retry = RetryPolicy(attempts=8, backoff_s=0.01, max_backoff_s=0.1, timeout_s=10)
    config = CatalogConfig(
        stac_url=_with_userinfo(twin.stac_url), blob_endpoint=blobs.url, retry=retry, tile_indexes=refs
    )
    caplog.set_level(logging.DEBUG)
    try:
        with subscription_key(), rasterio.Env(**GDAL_OPTIONS):
            result = materialise_sample(
                index=0, sample=SAMPLES[0], specs=modality_set(MODALITIES), client=config.open_client(),
                stac_url=config.stac_url, sign=config.signer(), cache=SearchCache(tmp_path / "cache"),
                tile_indexes=refs, retry=retry,
            )  # fmt: skip
    finally:
        blobs.stop()
    assert result.modalities["sentinel1"].present.any()
    assert sum(blobs.stats.injected.values()) > 0, "no fault: no failed read was logged"
    messages = [r.getMessage() for r in caplog.records]
    assert any("Authorization" in m for m in messages), "pystac-client's request log was not captured"
    # A failed range request is logged: by GDAL with the signed URL it requested (redacted), by the range
    # reader (composite.range_reads) with the unsigned URL.
    assert any(
        ("HTTP error code" in m and "?<redacted>" in m) or ("range read of" in m and "retrying" in m)
        for m in messages
    ), "no failed read logged"
    leaking = {(r.name, s) for r in caplog.records for s in _leaks(r.getMessage())}
    assert not leaking, sorted(leaking)


def test_what_redaction_and_the_href_check_let_through() -> None:
    from olmoearth_data.composite.hrefs import RefusedHrefError, check_href
    from olmoearth_data.redact import public_url, redact_text

    assert public_url(f"https://{USERINFO}@h.example:8443/a/b.geojson?sv=1&sig=x#f") == (
        "https://h.example:8443/a/b.geojson"
    )
    assert public_url("/data/corpus.zarr") == "/data/corpus.zarr"
    text = redact_text(
        f"GET https://{USERINFO}@h/x?sig=abc Headers: {{'Authorization': 'Basic Zm9vOmJhcg=='}} "
        f"failed for /vsicurl/http://b/c.tif?st=1&sig=def; Ocp-Apim-Subscription-Key: {KEY}"
    )
    assert not _leaks(text) and "Zm9vOmJhcg" not in text and "https://h/x" in text, text
    assert check_href("https://a.blob.core.windows.net/c/x.tif") == "https://a.blob.core.windows.net/c/x.tif"
    for href in ("file:///etc/hostname", "/etc/hostname", "/vsizip//tmp/a.zip/x.tif", "s3://b/x.tif"):
        with pytest.raises(RefusedHrefError):
            check_href(href)
    assert check_href("file:///mirror/a/x.tif", allow=("file:///mirror/",)) == "file:///mirror/a/x.tif"
    with pytest.raises(RefusedHrefError):
        check_href("file:///mirror/../etc/x.tif", allow=("file:///mirror/",))
