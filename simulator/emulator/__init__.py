"""A local TastyTrade API emulator: a real HTTP server whose orders are matched by BrokerSimulator.

:mod:`.state` translates between the API's order JSON and the simulator, :mod:`.records` holds
the customer, account and balance objects, :mod:`.server` is the HTTP layer (auth, versions,
envelopes, errors), :mod:`.faults` injects HTTP-level faults on top of the simulator's chaos,
:mod:`.session` drives it in-process or standalone, :mod:`.streamer` is the account streamer's websocket.

Where the emulator differs from (or guesses about) the real API -- see also the reference:

* ``POST /orders`` answers 201 (the reference cannot say whether it is 200 or 201; clients
  accept any 2xx). The token answer is a plain OAuth2 object (not enveloped).
* ``Accept-Version``: any valid date from 20250813 on is accepted and selects the newest version
  on or before it (inferred from the tastyware SDK sending 20251101); anything else is 406.
* A DELETE / PUT on a final order answers 422 ``order_not_cancellable`` / ``order_not_editable``
  in the error envelope of reference §4 (the reference documents the envelope and 422 for
  business rules, not these codes: inferred; clients branch on the status). A replacement's
  ``size`` is what remains to fill; a PUT without ``legs`` keeps it, a PUT with ``legs`` sets it.
* The account streamer (:mod:`.streamer`, a websocket on its own port of 127.0.0.1,
  ``TastytradeEmulator.streamer_url``) pushes an ``Order`` notification (the REST order object)
  on every order change, with ``timestamp`` in the virtual clock's epoch ms; only ``connect`` and
  ``heartbeat`` are served (no ``AccountBalance``, ``CurrentPosition`` or watchlist messages).
  Its faults: ``drop``, ``silent``, ``duplicate``, ``reorder``, ``batch``, ``withhold``, ``inject``.
* Quotes: ``GET /market-data/by-type`` and ``GET /market-data/equity-option/{symbol}``
  (:mod:`.market_data`, reference 5.1) from the simulated market; sizes, ``last``, the day's
  range, ``volume`` and ``open-interest`` are made up (the simulator models a top of book only).
  ``/_emulator/quotes`` is an older emulator-only shortcut.
* One account, one virtual trading day: ``/orders/live`` lists every order of the session.
* Only Limit and one-leg Market orders, Day and GTC; margin and fee blocks are constants (every
  field and breakdown of reference §3.3, zero fees); ``global-request-id`` is derived from the
  order, not per request.
* Customer, account and balances (reference §4.2) carry every recorded field with fixed values:
  balances never move with fills. ``GET /accounts/{n}`` answers like ``/customers/me/accounts/{n}``
  (the account object; the reference names only the latter). ``POST /sessions/validate`` answers
  201 with the legacy session's user object (the reference says only "2xx").
* Positions are the simulator's, with every §4.2 field; ``average-open-price`` and ``created-at``
  come from the fills the account's orders list, the close prices are the simulator's mid now,
  realized gains are 0.0.

Scenario knobs (tests tell the emulator to produce shapes the real API can produce but a calm
simulator never does; :class:`TastytradeEmulator` methods, by external-identifier pattern):
``withhold_fills`` / ``release_fills`` (legs list no ``fills`` while ``remaining-quantity``
counts them: a ``Filled`` order without fills), ``reject_after_fill`` (``Rejected`` after a
partial fill, keeping it), ``echo_prior_state`` (a DELETE answers the order as it was, e.g.
``Live``), ``refuse_orders`` (422 on placement). A DELETE on an order that closed since the
client last read it is refused 422 ``order_not_cancellable`` as above.

Hostile answers (for boundary tests; the simulator's state is untouched): ``tamper_orders``
(answers show a rewritten order JSON: an absurd fill price, an id that is not an integer, any
JSON), ``serve_foreign`` (raw records another application placed, listed in ``/orders/live`` and
``/orders``), ``claim_pages`` (list answers claim any ``total-pages``), ``stop_tampering``.

May import: :mod:`atomic_orders.fsm`, :mod:`atomic_orders.backends.tastytrade` (the wire shapes it
answers in, and the real client that :mod:`.session` drives) and :mod:`atomic_orders.simulator.broker`.
"""

from atomic_orders.simulator.emulator.faults import Fault, FaultInjector, HttpFaults
from atomic_orders.simulator.emulator.server import TastytradeEmulator
from atomic_orders.simulator.emulator.session import EmulatorDriver, run_standalone

__all__ = [
    "EmulatorDriver",
    "Fault",
    "FaultInjector",
    "HttpFaults",
    "TastytradeEmulator",
    "run_standalone",
]
