"""TastyTrade: the REST client, the order monitor and the execution backend.

One module per concern: :mod:`.config` (hosts, headers, timeouts), :mod:`.auth` (OAuth2 tokens,
masked secrets), :mod:`.client` (HTTP, retries, typed errors from :mod:`.errors`),
:mod:`.symbols` (OCC and streamer symbology), :mod:`.payloads` (order JSON),
:mod:`.parsing` (order JSON back, the status table), :mod:`.monitor` (polling -> ticket events),
:mod:`.quotes` (top of book from ``GET /market-data/by-type``, one request per pricing tick),
:mod:`.dry_run` (what a preflight answer says), :mod:`.streamer` (the account streamer's websocket:
pushed order changes), :mod:`.backend` (:class:`TastytradeBackend`) and :mod:`.live` (``LiveSession``:
the executor run standalone on the wall clock until stopped, as ``atomic-orders live`` runs it).

Choices where the reference is silent or unverified:

* Our ``order_ref`` travels as ``external-identifier`` (the API has no client order id and no
  idempotency key; it echoes this field back). Reconciliation searches for it.
* An order is ``Acknowledged`` as soon as the broker gives it an id in a non-rejected status
  (``Routed`` in the POST answer), not only at ``Live``.
* A 401 is retried once after a token refresh for every method, POST included: the API refuses
  before acting, so this cannot duplicate an order.
* Order status comes from polling ``/orders/live``, and with an :class:`AccountStreamer` from the
  pushed ``Order`` notifications too (the same parser; polls then run as a 30 s watchdog, and at
  the fast interval whenever the socket is down). The streamer re-reads the orders over REST
  after every (re)connect: the server replays nothing (reference 5, empirical).
* The certification preset sends no ``Accept-Version`` (sandbox 404s with it, tastyware #291).

May import: :mod:`atomic_orders.fsm`, ``requests`` and ``websockets``; no other backend and no simulator.
"""

from atomic_orders.backends.tastytrade.auth import OAuthCredentials, Secret, TokenManager
from atomic_orders.backends.tastytrade.backend import QuoteSource, TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import CERTIFICATION_URL, PRODUCTION_URL, TastytradeConfig
from atomic_orders.backends.tastytrade.quotes import TastytradeQuoteSource
from atomic_orders.backends.tastytrade.streamer import AccountStreamer, StreamerSettings

__all__ = [
    "AccountStreamer",
    "CERTIFICATION_URL",
    "PRODUCTION_URL",
    "OAuthCredentials",
    "QuoteSource",
    "Secret",
    "StreamerSettings",
    "TastytradeApiClient",
    "TastytradeBackend",
    "TastytradeConfig",
    "TastytradeQuoteSource",
    "TokenManager",
]
