"""How every remote call of a run is retried and timed out: one :class:`RetryPolicy`.

Its own module so that everything that retries (the catalogue client, the SAS tokens, the tile-index
fetch, the item reads) imports it without importing the catalogue (``stac.catalog`` imports
``stac.tile_index`` for its defaults, which used to import the policy back from ``stac.catalog``).
"""

from __future__ import annotations

from dataclasses import dataclass

from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for every remote call (search, signing, reads).

    Attributes:
        attempts: total tries per request (first try included).
        backoff_s: first delay in seconds; doubles each retry (tests use milliseconds).
        max_backoff_s: cap on one delay.
        timeout_s: connect/read timeout of one HTTP request, seconds.
    """

    attempts: int = 6
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 60.0

    def urllib3_retry(self) -> Retry:
        """The same policy as a urllib3 ``Retry`` (POST search is idempotent, so it is retried too)."""
        return Retry(
            total=self.attempts - 1,
            connect=self.attempts - 1,
            read=self.attempts - 1,
            status=self.attempts - 1,
            backoff_factor=self.backoff_s / 2,  # urllib3 sleeps factor·2^(n) from the 2nd retry on
            backoff_max=self.max_backoff_s,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=True,
        )

    def delays(self) -> list[float]:
        """Delays before retry 1, 2, … (seconds), for loops that retry by hand."""
        return [min(self.backoff_s * 2**i, self.max_backoff_s) for i in range(self.attempts - 1)]
