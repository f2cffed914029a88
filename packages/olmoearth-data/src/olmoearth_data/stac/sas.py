"""SAS tokens for Planetary Computer blob hrefs, fetched with the run's retry policy and timeouts.

The PC SDK's ``planetary_computer.sign_url`` fetches a container token with its own policy: 10
retries, 0.8 s backoff doubling up to 120 s, and no timeout — about 7.4 minutes per href while the
token endpoint is unreachable, before failing in a way a reader took for a bad file. Here the same
request (``GET <sas_url>/<account>/<container>``, the ``Ocp-Apim-Subscription-Key`` header when a key
is set) follows :class:`~olmoearth_data.stac.catalog.RetryPolicy` like every other remote call:
connection errors, timeouts, 429/5xx *and* 401/403 (a key being rotated, APIM hiccups) are retried
with the policy's backoff, each request times out after ``timeout_s``, and a failure that persists
raises :class:`~olmoearth_data.outages.SourceUnavailableError` naming the endpoint's host — the sample
stays pending. Any other answer (404: no storage known for that account/container) is the href's
fault and raises ``requests.HTTPError`` (the item is skipped as a bad file).

Tokens are shared with the SDK's cache (``planetary_computer.sas.TOKEN_CACHE``, keyed by the token
URL, refreshed a minute before expiry), so resetting the SDK (the twin's ``reset_pc_sdk``) resets them.
The endpoint is ``CatalogConfig.sas_url`` when set, else the SDK's setting (``PC_SDK_SAS_URL``).
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from olmoearth_data.outages import SourceUnavailableError, describe_failure, host_of_url, is_service_failure
from olmoearth_data.stac.retry import RETRY_STATUSES, RetryPolicy

#: Azure blob hosts end with this; other hrefs are returned unsigned (as the SDK does).
BLOB_STORAGE_DOMAIN = ".blob.core.windows.net"
#: Public account the SDK never signs (thumbnails).
PUBLIC_ACCOUNT = "ai4edatasetspublicassets.blob.core.windows.net"
#: Statuses of the token endpoint that are retried: throttling, server errors and auth (401/403).
SAS_RETRY_STATUSES = (401, 403, *RETRY_STATUSES)
ROLE = "SAS token endpoint"
#: Refresh a cached token this many seconds before it expires (the SDK's margin).
MIN_TTL_S = 60.0


def _settings():  # -> planetary_computer.settings.Settings
    from planetary_computer.settings import Settings

    return Settings.get()


class SasTokens:
    """Container SAS tokens from the PC token endpoint, with ``retry``'s policy.

    Args:
        retry: attempts, backoff and per-request timeout of token requests.
        sas_url: the token endpoint (``…/api/sas/v1/token``); None: the PC SDK's setting.
    """

    def __init__(self, *, retry: RetryPolicy, sas_url: str | None = None) -> None:
        self.retry = retry
        self._sas_url = sas_url
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}

    @property
    def sas_url(self) -> str:
        return (self._sas_url or _settings().sas_url).rstrip("/")

    def _session(self) -> requests.Session:
        policy = self.retry
        retry = Retry(
            total=policy.attempts - 1,
            connect=policy.attempts - 1,
            read=policy.attempts - 1,
            status=policy.attempts - 1,
            backoff_factor=policy.backoff_s / 2,
            backoff_max=policy.max_backoff_s,
            status_forcelist=SAS_RETRY_STATUSES,
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=True,
        )
        session = requests.Session()
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        return session

    def token(self, *, account: str, container: str):  # -> planetary_computer.sas.SASToken
        """The cached token of ``account``/``container``, fetched when missing or about to expire.

        Raises :class:`SourceUnavailableError` when the endpoint cannot give one after the retries (down,
        timing out, 401/403/429/5xx), ``requests.HTTPError`` for any other error answer.
        """
        url = f"{self.sas_url}/{account}/{container}"
        with self._lock:
            fetching = self._fetching.setdefault(url, threading.Lock())
        # One fetch per container at a time: the read threads of a worker that all need the same token
        # wait for the first one's answer instead of each asking the endpoint.
        with fetching:
            return self._token(url=url, account=account, container=container)

    def _token(self, *, url: str, account: str, container: str):  # -> planetary_computer.sas.SASToken
        from planetary_computer.sas import TOKEN_CACHE, SASToken

        with self._lock:
            cached = TOKEN_CACHE.get(url)
            if cached is not None and cached.ttl() >= MIN_TTL_S:
                return cached
        key = _settings().subscription_key
        headers = {"Ocp-Apim-Subscription-Key": key} if key else None
        try:
            with self._session() as session:
                response = session.get(url, headers=headers, timeout=self.retry.timeout_s)
                response.raise_for_status()
                token = SASToken(**response.json())
        except requests.RequestException as exc:
            if is_service_failure(exc):
                raise SourceUnavailableError(
                    host=host_of_url(url), role=ROLE, failure=describe_failure(exc)
                ) from None
            why = describe_failure(exc)
            raise requests.HTTPError(f"{ROLE} {host_of_url(url)}: {account}/{container}: {why}") from None
        with self._lock:
            TOKEN_CACHE[url] = token
        return token

    def forget(self) -> None:
        """Drop this endpoint's cached tokens (a blob host that answers 403 may hold an expired one)."""
        from planetary_computer.sas import TOKEN_CACHE

        prefix = f"{self.sas_url}/"
        with self._lock:
            for url in [u for u in TOKEN_CACHE if u.startswith(prefix)]:
                TOKEN_CACHE.pop(url, None)

    def sign(self, href: str) -> str:
        """``href`` with a SAS query appended when it is an Azure blob URL not yet signed; other hrefs
        unchanged (the SDK's rules)."""
        parts = urlsplit(href.rstrip("/"))
        if not parts.netloc.endswith(BLOB_STORAGE_DOMAIN) or parts.netloc == PUBLIC_ACCOUNT:
            return href
        if set(parse_qs(parts.query)) & {"st", "se", "sp"}:
            return href  # already signed
        account = parts.netloc.split(".")[0]
        segments = parts.path.lstrip("/").split("/", 1)
        if len(segments) < 2 or not segments[0]:
            raise ValueError(f"not a blob URL with a container: {href.split('?')[0]!r}")
        token = self.token(account=account, container=segments[0])
        return f"{href}?{token.token}"
