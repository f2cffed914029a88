"""Stand-in for PC's SAS token API (``/api/sas/v1``) and the matching Azure-side SAS check.

Tokens have the exact shape of a real PC response (``fixtures/sas/sas-token-response.issue295.json``):
``{"msft:expiry": "<se>", "token": "st=...&se=...&sp=rl&sv=2021-06-08&sr=c&skoid=...&sktid=...&skt=...
&ske=...&sks=b&skv=2021-06-08&sig=..."}`` with URL-encoded times, ``st`` = now − 24 h and ``se`` =
now + TTL (45 min by default, as PC's). ``sig`` is base64 HMAC-SHA256 over the signed fields and the
canonical resource ``/blob/<account>/<container>`` with a per-twin random key, so the blob server can
reject tokens that are missing, altered, expired or for another container, with 403 like Azure.

Endpoints (the PC SDK uses the second through ``PC_SDK_SAS_URL=<sas_url>/api/sas/v1/token``)::

    GET /api/sas/v1/token/<collection>          -> token for the collection's msft:storage_account/container
    GET /api/sas/v1/token/<account>/<container> -> token for that container
    GET /api/sas/v1/sign?href=<blob url>        -> {"msft:expiry", "href": <signed href>}
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, quote, unquote, urlsplit

from olmoearth_twin.blob_urls import parse_blob_url
from olmoearth_twin.servers.http_thread import QuietHandler

SAS_PREFIX = "/api/sas/v1"
SERVICE_VERSION = "2021-06-08"
DEFAULT_TTL = dt.timedelta(minutes=45)
_SIGNED_FIELDS = ("st", "se", "sp", "sv", "sr", "skoid", "sktid", "skt", "ske", "sks", "skv")


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


class SasIssuer:
    """Mints and verifies container SAS tokens.

    Args:
        ttl: token lifetime (``se − now``).
        clock: returns the current UTC time (tests pass a fake one to check expiry).
    """

    def __init__(
        self, *, ttl: dt.timedelta = DEFAULT_TTL, clock: Callable[[], dt.datetime] | None = None
    ) -> None:
        self.ttl = ttl
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._key = secrets.token_bytes(32)
        # Like a user delegation key: fixed object/tenant ids, valid for a week from a past start.
        self._skoid = str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))
        self._sktid = str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))
        self._lock = threading.Lock()
        self.issued = 0

    def _signature(self, *, account: str, container: str, fields: dict[str, str]) -> str:
        string_to_sign = "\n".join([*(fields[k] for k in _SIGNED_FIELDS), f"/blob/{account}/{container}"])
        digest = hmac.new(self._key, string_to_sign.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def issue(self, *, account: str, container: str) -> dict[str, str]:
        """A token response ``{"msft:expiry": ..., "token": ...}`` for one container (read + list)."""
        now = self._clock().replace(microsecond=0)
        key_start = now.replace(hour=0, minute=1, second=26)
        fields = {
            "st": _iso(now - dt.timedelta(hours=24)),
            "se": _iso(now + self.ttl),
            "sp": "rl",
            "sv": SERVICE_VERSION,
            "sr": "c",
            "skoid": self._skoid,
            "sktid": self._sktid,
            "skt": _iso(key_start),
            "ske": _iso(key_start + dt.timedelta(days=7)),
            "sks": "b",
            "skv": SERVICE_VERSION,
        }
        fields["sig"] = self._signature(account=account, container=container, fields=fields)
        with self._lock:
            self.issued += 1
        token = "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items())
        return {"msft:expiry": fields["se"], "token": token}

    def check(self, *, account: str, container: str, query: str) -> str | None:
        """Why a request with this query string is not authorised, or ``None`` if it is.

        ``query`` is the raw URL query (``st=...&sig=...``); extra parameters are ignored.
        """
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if "sig" not in params:
            return "Server failed to authenticate the request: no SAS token (sig) in the query string."
        missing = [k for k in _SIGNED_FIELDS if k not in params]
        if missing:
            return f"Server failed to authenticate the request: SAS field(s) {missing} missing."
        expected = self._signature(account=account, container=container, fields=params)
        if not hmac.compare_digest(expected, params["sig"]):
            return "Signature did not match. String to sign used was for another resource or was altered."
        try:
            start, expiry = _parse_iso(params["st"]), _parse_iso(params["se"])
        except ValueError:
            return "Server failed to authenticate the request: malformed st/se."
        now = self._clock()
        if not start <= now <= expiry:
            return f"Signed expiry time [{params['se']}] must be after the current time [{_iso(now)}]."
        if "r" not in params["sp"]:
            return "This request is not authorized to perform this operation using this permission."
        return None


#: Header the PC SDK sends when ``PC_SDK_SUBSCRIPTION_KEY`` is set (planetary_computer/sas.py).
SUBSCRIPTION_KEY_HEADER = "Ocp-Apim-Subscription-Key"
#: Azure API Management's answer to a request without a key (PC's SAS API sits behind APIM).
MISSING_KEY = {
    "statusCode": 401,
    "message": "Access denied due to missing subscription key. Make sure to include subscription key "
    "when making requests to an API.",
}


def make_sas_handler(
    *,
    issuer: SasIssuer,
    collections: dict[str, tuple[str, str]],
    restricted: set[tuple[str, str]] | None = None,
) -> type[QuietHandler]:
    """HTTP handler class for the SAS API; ``collections`` maps collection id → (account, container)
    and may be updated while serving.

    ``restricted`` holds the (account, container) pairs of collections with ``msft:requires_account:
    true`` (sentinel-1-rtc): a token for them needs a non-empty ``Ocp-Apim-Subscription-Key`` header
    (the twin has no accounts, so any key is accepted), else 401 with APIM's JSON error, as PC answers.
    """
    restricted = restricted if restricted is not None else set()

    class SasHandler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            if path.startswith(f"{SAS_PREFIX}/token/"):
                args = [a for a in path[len(f"{SAS_PREFIX}/token/") :].split("/") if a]
                target = (
                    tuple(args) if len(args) == 2 else collections.get(args[0]) if len(args) == 1 else None
                )
                if target in restricted and not self.headers.get(SUBSCRIPTION_KEY_HEADER, "").strip():
                    self._json(401, MISSING_KEY)
                    return
                if len(args) == 2:
                    self._json(200, issuer.issue(account=args[0], container=args[1]))
                    return
                if len(args) == 1 and args[0] in collections:
                    account, container = collections[args[0]]
                    self._json(200, issuer.issue(account=account, container=container))
                    return
                self._json(404, {"detail": f"No storage information found for {'/'.join(args)!r}"})
                return
            if path == f"{SAS_PREFIX}/sign":
                href = parse_qs(parts.query).get("href", [""])[0]
                ref = parse_blob_url(url=href)
                if ref is None:
                    self._json(400, {"detail": f"Not an Azure blob storage href: {href!r}"})
                    return
                if (ref.account, ref.container) in restricted and not self.headers.get(
                    SUBSCRIPTION_KEY_HEADER, ""
                ).strip():
                    self._json(401, MISSING_KEY)
                    return
                token = issuer.issue(account=ref.account, container=ref.container)
                signed = f"{href}?{token['token']}"
                self._json(200, {"msft:expiry": token["msft:expiry"], "href": signed})
                return
            self._json(404, {"detail": "Not Found"})

        def _json(self, status: int, payload: dict[str, object]) -> None:
            self.send_body(status=status, body=json.dumps(payload).encode(), content_type="application/json")

    return SasHandler
