"""The Planetary Computer twin: pgstac + stac-fastapi, the SAS stand-in and the blob server, together.

Usage::

    catalog = generate_sentinel2(samples=SMALL_SAMPLES, seed=0, cache_dir=Path("build/twin/cache"))
    with Twin(root=Path("build/twin"), catalog=catalog) as twin, twin.environment():
        client = pystac_client.Client.open(twin.stac_url)
        item = planetary_computer.sign(next(client.search(collections=["sentinel-2-l2a"]).items()))
        with rasterio.open(rewrite_href(item.assets["B04"].href)) as ds: ...

Everything listens on 127.0.0.1 only. Start-up takes ~3-4 s; on exit (also after an exception) the
API process and the PostgreSQL cluster are stopped and the HTTP threads joined.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from olmoearth_twin.blob_urls import BLOB_ENDPOINT_ENV, rewrite_href
from olmoearth_twin.catalog.store import Catalog
from olmoearth_twin.servers import pgstac
from olmoearth_twin.servers.blobs import BlobStats, make_blob_handler
from olmoearth_twin.servers.faults import FaultConfig, FaultProxy, FaultStats
from olmoearth_twin.servers.http_thread import BackgroundHTTPServer
from olmoearth_twin.servers.net import NetProfile, net_profile
from olmoearth_twin.servers.postgres import PostgresServer
from olmoearth_twin.servers.sas import DEFAULT_TTL, SAS_PREFIX, SasIssuer, make_sas_handler
from olmoearth_twin.servers.stac_api import STAC_PREFIX, StacApiServer

#: A named network profile (``wan``, ``far``, … :data:`~olmoearth_twin.servers.net.NET_PROFILES`) for a
#: twin started without ``net=``: how ``make demo NET=wan`` / ``make dataset CATALOG=twin NET=wan`` reach it.
NET_ENV = "OLMOEARTH_TWIN_NET"
#: Suggested variable for a pipeline's catalogue URL (the twin exports it; production leaves it unset).
STAC_URL_ENV = "OLMOEARTH_STAC_URL"
#: The PC SDK's token endpoint override.
SAS_URL_ENV = "PC_SDK_SAS_URL"
DEFAULT_ROOT = Path("build/twin")


class Twin:
    """A running local Planetary Computer (use as a context manager).

    Args:
        root: working folder (cluster in ``pg/``, logs in ``logs/``); must not be inside git-tracked
            files. Default ``build/twin`` (relative to the current folder).
        catalog: generated catalogue(s) to load and serve; more can be loaded later.
        token_ttl: SAS token lifetime (PC: 45 min).
        faults: inject faults (429/503/resets/slow answers, see :mod:`~olmoearth_twin.servers.faults`)
            through a proxy in front of the STAC API and one in front of the blob server; the public
            ``stac_url``/``assets_url`` (and ``env``) then go through them. The SAS API is not proxied
            for faults.
        net: a network to impose (latency, jitter, bandwidth, connection set-up; see
            :class:`~olmoearth_twin.servers.net.NetProfile`) on the STAC API, the blob server *and* the
            SAS API, through the same proxies (the SAS one injects no faults). None: loopback, unless
            ``faults`` is set (then the proxies run without delays; :meth:`set_net` can add some), or
            unless :data:`NET_ENV` names a profile.

    Attributes (valid once started):
        stac_url: STAC API root, ``http://127.0.0.1:<p>/api/stac/v1``.
        sas_url: token endpoint for ``PC_SDK_SAS_URL``, ``http://127.0.0.1:<q>/api/sas/v1/token``.
        assets_url: blob endpoint for ``OLMOEARTH_BLOB_ENDPOINT``, ``http://127.0.0.1:<r>``.
        direct_stac_url, direct_assets_url: the same, never through the fault proxies.
        fault_stats: ``{"stac": FaultStats, "blobs": FaultStats}`` with faults or a network (plus
            ``"sas"`` with a network), else ``{}``.
        dsn: libpq URL of the pgstac database.
        issuer: the :class:`SasIssuer` (token counter, verification).
        blob_stats: request counters of the blob server.
        startup_s: seconds the last start took.
    """

    def __init__(
        self,
        *,
        root: Path | str = DEFAULT_ROOT,
        catalog: Catalog | Sequence[Catalog] | None = None,
        token_ttl: dt.timedelta = DEFAULT_TTL,
        faults: FaultConfig | None = None,
        net: NetProfile | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.catalogs: list[Catalog] = [catalog] if isinstance(catalog, Catalog) else list(catalog or [])
        self.issuer = SasIssuer(ttl=token_ttl)
        self.blob_stats = BlobStats()
        self.startup_s = float("nan")
        self._storage: dict[str, tuple[str, str]] = {}
        #: (account, container) of collections with ``msft:requires_account`` (need a subscription key).
        self.restricted: set[tuple[str, str]] = set()
        self._blob_roots: list[Path] = []
        #: (account, container) pairs the blob server reads without a SAS (the non-PC maps).
        self.public: set[tuple[str, str]] = set()
        self._tile_indexes: dict[str, tuple[str, str, str]] = {}
        self._postgres: PostgresServer | None = None
        self._api: StacApiServer | None = None
        self._sas: BackgroundHTTPServer | None = None
        self._blobs: BackgroundHTTPServer | None = None
        self.faults = faults
        self.net = net if net is not None or not os.environ.get(NET_ENV) else net_profile(os.environ[NET_ENV])
        self._proxies: dict[str, FaultProxy] = {}
        self.dsn = ""

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Twin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start PostgreSQL, create + load pgstac, start the SAS/blob servers and the STAC API."""
        t0 = time.perf_counter()
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._postgres = PostgresServer(root=self.root / "pg")
            self._postgres.start()
            pgstac.create_pgstac_database(server=self._postgres)
            self.dsn = self._postgres.dsn(database=pgstac.DATABASE)
            for catalog in self.catalogs:
                self._load_catalog(catalog)
            self._sas = BackgroundHTTPServer(
                handler=make_sas_handler(
                    issuer=self.issuer, collections=self._storage, restricted=self.restricted
                )
            )
            self._sas.start()
            handler = make_blob_handler(
                roots=self._blob_roots, issuer=self.issuer, stats=self.blob_stats, public=self.public
            )
            self._blobs = BackgroundHTTPServer(handler=handler)
            self._blobs.start()
            self._api = StacApiServer(
                pg_env=self._postgres.env, database=pgstac.DATABASE, workdir=self.root / "logs"
            )
            self._api.start()
            if self.faults is not None or self.net is not None:
                self._start_proxies(self.faults or FaultConfig(rate=0.0))
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0

    def stop(self) -> None:
        """Stop everything that was started, in reverse order; safe to call twice."""
        errors: list[BaseException] = []
        for part in (*self._proxies.values(), self._api, self._blobs, self._sas, self._postgres):
            if part is None:
                continue
            try:
                part.stop()
            except Exception as err:  # keep stopping the rest; report the first failure
                errors.append(err)
        if errors:
            raise errors[0]

    def _start_proxies(self, config: FaultConfig) -> None:
        api = self._require(self._api, "stac_url")
        blobs = self._require(self._blobs, "assets_url")
        # Different seeds per proxy: the STAC and blob fault sequences are independent.
        net = self.net
        self._proxies["stac"] = FaultProxy(upstream=f"http://127.0.0.1:{api.port}", config=config, net=net)
        self._proxies["blobs"] = FaultProxy(
            upstream=blobs.url, config=dataclasses.replace(config, seed=config.seed + 1), net=net
        )
        if net is not None:
            sas = self._require(self._sas, "sas_url")
            self._proxies["sas"] = FaultProxy(upstream=sas.url, config=FaultConfig(rate=0.0), net=net)
        for proxy in self._proxies.values():
            proxy.start()

    @property
    def fault_stats(self) -> dict[str, FaultStats]:
        return {name: proxy.stats for name, proxy in self._proxies.items()}

    def set_net(self, profile: NetProfile) -> None:
        """Impose ``profile`` on every proxy from the next request on (the twin must have been started
        with ``faults`` or ``net``: without proxies there is nothing to slow down)."""
        if not self._proxies:
            raise RuntimeError("the twin runs without proxies; start it with net=NetProfile() to change it")
        for proxy in self._proxies.values():
            proxy.set_net(profile)

    # -- addresses -------------------------------------------------------------------------------
    def _require(self, part: Any, what: str) -> Any:
        if part is None:
            raise RuntimeError(f"the twin is not running ({what} unavailable); use `with Twin(...) as twin`")
        return part

    @property
    def stac_url(self) -> str:
        if "stac" in self._proxies:
            return f"{self._proxies['stac'].url}{STAC_PREFIX}"
        return self.direct_stac_url

    @property
    def direct_stac_url(self) -> str:
        return self._require(self._api, "stac_url").url

    @property
    def sas_url(self) -> str:
        base = self._proxies["sas"].url if "sas" in self._proxies else self._require(self._sas, "sas_url").url
        return f"{base}{SAS_PREFIX}/token"

    @property
    def assets_url(self) -> str:
        if "blobs" in self._proxies:
            return self._proxies["blobs"].url
        return self.direct_assets_url

    @property
    def direct_assets_url(self) -> str:
        return self._require(self._blobs, "assets_url").url

    @property
    def env(self) -> dict[str, str]:
        """Variables a client process exports to use the twin (see the package README)."""
        env = {
            SAS_URL_ENV: self.sas_url,
            BLOB_ENDPOINT_ENV: self.assets_url,
            STAC_URL_ENV: self.stac_url,
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        }
        if any(os.environ.get(k) for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")):
            # requests (the PC SDK) and curl (GDAL) must reach loopback directly, not via a proxy.
            current = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
            env["NO_PROXY"] = env["no_proxy"] = ",".join(p for p in (current, "127.0.0.1", "localhost") if p)
        return env

    @contextlib.contextmanager
    def environment(self) -> Iterator[dict[str, str]]:
        """Set :attr:`env` in ``os.environ`` for the block (restored after) and reset the PC SDK's
        cached settings and tokens, which it otherwise reads only once per process."""
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        reset_pc_sdk()
        try:
            yield self.env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            reset_pc_sdk()

    def tile_index_url(self, name: str) -> str:
        """URL of a loaded non-PC map's GeoJSON tile index (``wri-canopy-height``,
        ``worldcereal-2021``): ``<assets_url>/<account>/<container>/<path>``, readable without a SAS;
        the features' relative ``href``s resolve against ``<assets_url>/<account>/<container>/``."""
        if name not in self._tile_indexes:
            raise KeyError(f"no tile index {name!r} loaded; have {sorted(self._tile_indexes)}")
        account, container, path = self._tile_indexes[name]
        return f"{self.assets_url}/{account}/{container}/{path}"

    def rewrite_href(self, href: str) -> str:
        """Map a (signed) PC blob URL onto this twin's blob server (see :mod:`olmoearth_twin.blob_urls`)."""
        return rewrite_href(href, endpoint=self.assets_url)

    # -- loading ---------------------------------------------------------------------------------
    def _load_catalog(self, catalog: Catalog) -> None:
        collections = catalog.collections()
        if collections:  # the maps catalogue has no STAC records
            self.load_collections(collections)
            for collection_id, document in catalog.queryables().items():
                self.load_queryables(document, collection_ids=[collection_id])
            pgstac.load_items(dsn=self.dsn, items=catalog.items_path)
        for name, where in catalog.manifest().get("tile_indexes", {}).items():
            self.public.add((where["account"], where["container"]))
            self._tile_indexes[name] = (where["account"], where["container"], where["path"])
        if catalog.blobs_dir not in self._blob_roots:
            self._blob_roots.append(catalog.blobs_dir)

    def load_catalog(self, catalog: Catalog) -> None:
        """Load and serve one more generated catalogue while running."""
        self._require(self._postgres, "database")
        self._load_catalog(catalog)
        self.catalogs.append(catalog)

    def load_collections(self, collections: Iterable[dict[str, Any]]) -> None:
        """Upsert collection documents as given (and register their storage for the SAS stand-in)."""
        docs = list(collections)
        pgstac.load_collections(dsn=self._require(self.dsn or None, "database"), collections=docs)
        for doc in docs:
            if "msft:storage_account" in doc and "msft:container" in doc:
                self._storage[doc["id"]] = (doc["msft:storage_account"], doc["msft:container"])
                if doc.get("msft:requires_account"):
                    self.restricted.add(self._storage[doc["id"]])

    def load_queryables(self, queryables: dict[str, Any], *, collection_ids: list[str]) -> None:
        """Upsert a queryables document (JSON Schema) for these collections."""
        pgstac.load_queryables(
            dsn=self._require(self.dsn or None, "database"),
            queryables=queryables,
            collection_ids=collection_ids,
        )

    def load_items(self, items: Iterable[dict[str, Any]]) -> None:
        """Upsert item documents as given (their collection must be loaded)."""
        pgstac.load_items(dsn=self._require(self.dsn or None, "database"), items=list(items))


def reset_pc_sdk() -> None:
    """Forget the PC SDK's cached settings and SAS tokens (it reads both once per process)."""
    try:
        from planetary_computer import sas, settings
    except ImportError:  # the SDK is optional for the twin itself
        return
    settings.Settings.get.cache_clear()
    sas.TOKEN_CACHE.clear()
