"""Broker wire data for property tests: TastyTrade order JSON and LEAN order events, adversarial.

The property suites in ``tests/properties/test_wire_*.py`` drive a REAL
:class:`~atomic_orders.fsm.executor.AtomicOrderExecutor` through the REAL translation layers
(:mod:`atomic_orders.backends.tastytrade` parsing + monitor + backend;
:mod:`atomic_orders.backends.quantconnect` through the
LEAN stand-in :mod:`atomic_orders.simulator.lean`). This module holds what they share and what is reusable:

TastyTrade
    :class:`TtAccount` is a broker account's truth: every order object (ours, replacements,
    other apps'), each leg's executed fills, and what the order record *presents* - how many of
    those fills its ``fills`` list shows (``listed``) and what its ``remaining-quantity`` counts
    (``counted``), both lagging the truth independently and never going back. The account is
    consistent where a real broker is (fill ids unique, quantities never decrease, a final record
    counts every executed fill, no fill after a final status, a combo fills whole units on every
    leg) and adversarial in presentation (``Filled`` with no fills, a count ahead of or behind
    the fills, fills listed after the final status, statuses in any phase with fills present,
    missing or partial, replacement chains, foreign orders). :class:`WireTastytradeClient` is an
    in-process fake of ONLY :class:`atomic_orders.backends.tastytrade.client.TastytradeApiClient` (the object the
    backend and monitor talk to) answering from the account; the emulator cannot be told to serve
    arbitrary order JSON (it renders its own orders from the simulator), so the suites go through
    this fake instead of HTTP.

LEAN
    :class:`InertBroker` is a :class:`BrokerSimulator` (market, quotes, clock)
    that records the requests the stand-in sends and never produces an event by itself: every
    LEAN order event comes from the test through :meth:`LeanStandIn.brokerage_events`
    (LEAN's transaction-handler semantics: status copied onto the order, every non-zero fill
    quantity counted by the ticket, ``NONE`` events recorded but not forwarded).

Strategies: :func:`fill_splits` (a leg's contracts split into fill records), :func:`leg_prices`,
:func:`tt_initial_statuses`, :func:`tt_kill_statuses`, :func:`tt_foreign_orders`,
:func:`lean_fill_statuses`, :func:`submit_plans`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import strategies as st

from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.errors import (
    NotFoundError,
    ServerError,
    TastytradeApiError,
    TastytradeTransportError,
)
from atomic_orders.backends.tastytrade.parsing import TERMINAL_STATUSES
from atomic_orders.fsm.clock import ManualClock
from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused
from atomic_orders.fsm.orders import BrokerEvent, OrderRequest
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

__all__ = [
    "LEAN_FILL_STATUSES",
    "TT_FILLABLE",
    "TT_SUBMISSION",
    "InertBroker",
    "TtAccount",
    "TtLeg",
    "TtOrder",
    "WireTastytradeClient",
    "fill_splits",
    "leg_prices",
    "lean_fill_statuses",
    "submit_plans",
    "tt_foreign_orders",
    "tt_initial_statuses",
    "tt_kill_statuses",
]

# ---------------------------------------------------------------------------------------------
# TastyTrade

#: Statuses of an order that reached the broker but does not work at the exchange yet.
TT_SUBMISSION: tuple[str, ...] = ("Received", "Routed", "In Flight")
#: Statuses in which the exchange may fill an order.
TT_FILLABLE: frozenset[str] = frozenset({"In Flight", "Live", "Cancel Requested", "Replace Requested"})
#: Final statuses an order can be ended with besides ``Filled`` (a cancel's is ``Cancelled``).
TT_KILLS: tuple[str, ...] = ("Rejected", "Expired", "Removed", "Partially Removed")
#: The outcomes a submission (POST) can have.
SUBMIT_PLANS: tuple[str, ...] = ("accept", "refuse", "unknown_present", "unknown_absent")


def _number(value: int, as_text: bool) -> int | str:
    return f"{value}.0" if as_text else value


@attrs.define
class TtLeg:
    """One leg of a TastyTrade order: its executed fills and what the record presents of them."""

    symbol: str
    action: str
    ratio: int
    quantity: int
    #: Executed fills, in execution order, as the API lists them (``fill-id``, ``quantity``, ...).
    fills: list[dict[str, Any]] = attrs.Factory(list)
    #: How many of :attr:`fills` the record lists (a prefix; never decreases).
    listed: int = 0
    #: Contracts the record counts filled (``remaining-quantity = quantity - counted``; never decreases).
    counted: int = 0

    @property
    def filled(self) -> int:
        """Contracts executed (the truth)."""
        return sum(int(f["quantity"]) for f in self.fills)

    @property
    def sign(self) -> int:
        """+1 for a buying leg, -1 for a selling one."""
        return 1 if self.action.startswith("Buy") else -1

    def publish(self, fills: bool = True, count: bool = True) -> None:
        """Let the record catch up with the truth (its fills list, its count, or both)."""
        if fills:
            self.listed = len(self.fills)
        if count:
            self.counted = self.filled

    def to_json(self, gives_count: bool, as_text: bool) -> dict[str, Any]:
        """The leg object of the order JSON."""
        out: dict[str, Any] = {
            "instrument-type": "Equity Option",
            "symbol": self.symbol,
            "quantity": _number(self.quantity, as_text),
            "action": self.action,
            "fills": [dict(f) for f in self.fills[: self.listed]],
        }
        if gives_count:
            out["remaining-quantity"] = _number(max(0, self.quantity - self.counted), as_text)
        return out


@attrs.define
class TtOrder:
    """One TastyTrade order object (ours, a replacement of ours, or another app's)."""

    id: int
    ext: str | None
    legs: list[TtLeg]
    size: int
    combo: bool
    price: Decimal | None
    status: str
    received_at: dt.datetime
    updated: int
    #: The executor's order reference this order carries the ticket of (None: not ours).
    ticket_ref: str | None
    gives_count: bool = True
    as_text: bool = False
    prev_status: str | None = None
    replaces: int | None = None
    replacing: int | None = None
    edited: bool = False
    reject_reason: str | None = None
    live_at: dt.datetime | None = None

    @property
    def terminal(self) -> bool:
        """The order can no longer change (fills of its past may still be listed later)."""
        return self.status in TERMINAL_STATUSES

    @property
    def ours(self) -> bool:
        """The order carries one of the executor's tickets."""
        return self.ticket_ref is not None

    @property
    def units_filled(self) -> int:
        """Strategy units executed (whole units on every leg: a combo fills atomically)."""
        if not self.combo:
            return self.legs[0].filled
        return min(leg.filled // leg.ratio for leg in self.legs)

    @property
    def remaining(self) -> int:
        """Units the exchange may still fill."""
        return max(0, self.size - self.units_filled)

    @property
    def published(self) -> bool:
        """The record shows every executed fill and counts them all."""
        return all(leg.listed == len(leg.fills) and leg.counted == leg.filled for leg in self.legs)

    def to_json(self, account: str) -> dict[str, Any]:
        """The order object as ``GET /orders/{id}`` and the order lists send it."""
        out: dict[str, Any] = {
            "id": self.id,
            "account-number": account,
            "time-in-force": "Day",
            "order-type": "Limit" if self.price is not None else "Market",
            "size": _number(self.size, self.as_text),
            "underlying-symbol": self.legs[0].symbol[:6].strip(),
            "underlying-instrument-type": "Equity",
            "status": self.status,
            "cancellable": self.status not in TERMINAL_STATUSES and self.status != "Cancel Requested",
            "editable": self.status in ("Received", "Routed", "In Flight", "Live"),
            "edited": self.edited,
            "received-at": self.received_at.isoformat().replace("+00:00", "Z"),
            "updated-at": self.updated,
            "legs": [leg.to_json(self.gives_count, self.as_text) for leg in self.legs],
        }
        if self.price is not None:
            out["price"] = str(abs(self.price))
            out["price-effect"] = "Credit" if self.price < 0 else "Debit"
        optional = {
            "external-identifier": self.ext,
            "live-at": None if self.live_at is None else self.live_at.isoformat(),
            "reject-reason": self.reject_reason,
            "replaces-order-id": self.replaces,
            "replacing-order-id": self.replacing,
            "contingent-status": "Pending Order" if self.status == "Contingent" else None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


class TtAccount:
    """One TastyTrade account's orders: the truth, what their records present, and the requests.

    Every change goes through a method here, so the account stays as consistent as a real broker:
    fill ids are unique, executed quantities and presented ones never decrease, a final record
    counts every executed fill (its ``fills`` list may still lag), nothing fills after a final
    status, an order never fills beyond its size, a combo fills whole units on every leg.
    """

    def __init__(self, clock: ManualClock, *, initial_status: str = "Received", echo_prior: bool = False,
                 gives_count: bool = True, as_text: bool = False, first_id: int = 410001) -> None:
        self.clock = clock
        self.initial_status = initial_status
        #: Our orders' records carry ``remaining-quantity`` / numbers as decimal strings (``"2.0"``).
        self.gives_count = gives_count
        self.as_text = as_text
        #: A DELETE answers the order as it was before the request (``Live``), not ``Cancel Requested``.
        self.echo_prior = echo_prior
        self.orders: dict[int, TtOrder] = {}
        self._next_id = first_id
        self._fill_seq = 0
        self._updated = int(clock.now().timestamp() * 1000)
        #: Submission outcomes for the next POSTs (see :data:`SUBMIT_PLANS`); empty: accept.
        self.plan: list[str] = []
        #: The connection is down: every request fails before reaching the broker.
        self.down = False
        #: The next POST/PUT/DELETE takes effect but its answer is lost (a timeout).
        self.lose_next_answer = False
        #: Requests by kind (``POST``, ``PUT``, ``DELETE``, ``GET``, ``LIST``).
        self.requests: dict[str, int] = {}

    # -- helpers ------------------------------------------------------------------------------

    def _tick(self) -> int:
        self._updated = max(self._updated + 1, int(self.clock.now().timestamp() * 1000))
        return self._updated

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def touch(self, order: TtOrder) -> None:
        """The record changed: a new ``updated-at``."""
        order.updated = self._tick()

    def ours(self) -> list[TtOrder]:
        """The orders carrying the executor's tickets, oldest first."""
        return [o for o in self.orders.values() if o.ours]

    def truth_positions(self, ours_only: bool = True) -> dict[OptionSymbol, int]:
        """Signed contracts executed per symbol (of the executor's orders, or of every order)."""
        net: dict[OptionSymbol, int] = {}
        for o in self.orders.values():
            if ours_only and not o.ours:
                continue
            for leg in o.legs:
                symbol = OptionSymbol.parse_occ(leg.symbol)
                net[symbol] = net.get(symbol, 0) + leg.sign * leg.filled
        return {s: q for s, q in net.items() if q}

    # -- the exchange ---------------------------------------------------------------------------

    def new_order(self, legs: Sequence[tuple[str, str, int]], units: int, *, ext: str | None, ticket_ref: str | None,
                  price: Decimal | None, status: str, received_at: dt.datetime | None = None,
                  gives_count: bool = True, as_text: bool = False) -> TtOrder:
        """Create an order object; ``legs`` are ``(OCC symbol, action, ratio)``."""
        combo = len(legs) > 1
        order = TtOrder(
            id=self._new_id(), ext=ext,
            legs=[TtLeg(sym, action, ratio, units * ratio if combo else units) for sym, action, ratio in legs],
            size=units, combo=combo, price=price, status=status,
            received_at=received_at if received_at is not None else self.clock.now(), updated=self._tick(),
            ticket_ref=ticket_ref, gives_count=gives_count, as_text=as_text,
        )
        if status == "Live":
            order.live_at = self.clock.now()
        self.orders[order.id] = order
        return order

    def fill_id(self) -> str:
        """A fresh, account-unique fill id."""
        self._fill_seq += 1
        return f"FL{self._fill_seq:05d}"

    def execute(self, order: TtOrder, units: int, splits: Sequence[Sequence[int]], prices: Sequence[Decimal], *,
                show_fills: bool, show_count: bool) -> None:
        """The exchange fills ``units`` of ``order``: on every leg ``units x ratio`` contracts, in the
        fill records ``splits[i]`` (their sizes; normalised to the right sum) at ``prices[i]``.

        ``show_fills`` / ``show_count``: the record lists the new fills / counts them at once.
        """
        if order.terminal or not 0 < units <= order.remaining:
            raise ValueError(f"cannot fill {units} of order {order.id} ({order.status}, {order.remaining} left)")
        when = self.clock.now().isoformat()
        for i, leg in enumerate(order.legs):
            contracts = units * leg.ratio if order.combo else units
            for part in _normalise(splits[i % len(splits)] if splits else (), contracts):
                leg.fills.append({"fill-id": self.fill_id(), "quantity": str(part),
                                  "fill-price": str(prices[i % len(prices)]), "filled-at": when})
            leg.publish(fills=show_fills, count=show_count)
        self.touch(order)

    def set_status(self, order: TtOrder, status: str, reason: str | None = None) -> None:
        """Move ``order`` to ``status``; a final status counts every executed fill (its list may lag)."""
        order.status = status
        if status == "Live" and order.live_at is None:
            order.live_at = self.clock.now()
        if status in TERMINAL_STATUSES:
            for leg in order.legs:
                leg.publish(fills=False, count=True)
            if status == "Rejected":
                order.reject_reason = reason or "rejected by the exchange"
            pending = self.pending_replacement(order)
            if pending is not None and status != "Cancelled":
                self.set_status(pending, "Rejected", f"original order {order.id} is {status}")
        self.touch(order)

    def pending_replacement(self, order: TtOrder) -> TtOrder | None:
        """The ``Contingent`` replacement waiting for ``order``, if any."""
        if order.replacing is None:
            return None
        new = self.orders.get(order.replacing)
        return new if new is not None and new.status == "Contingent" else None

    def apply_replace(self, original: TtOrder) -> TtOrder:
        """The replacement of ``original`` takes over (``original`` is ``Cancelled``, ``edited``)."""
        new = self.pending_replacement(original)
        if new is None or original.remaining == 0 or original.status != "Replace Requested":
            raise ValueError(f"order {original.id} has no replacement that can take over")
        units = original.remaining
        new.size = units
        for leg in new.legs:
            leg.quantity = units * leg.ratio if new.combo else units
        original.edited = True
        self.set_status(original, "Cancelled")
        self.set_status(new, "Live")
        return new

    def refuse_replace(self, original: TtOrder, reason: str = "replacement rejected") -> None:
        """The replacement is rejected; ``original`` works on."""
        new = self.pending_replacement(original)
        if new is None:
            raise ValueError(f"order {original.id} has no pending replacement")
        self.set_status(new, "Rejected", reason)
        if original.status == "Replace Requested":
            self.set_status(original, original.prev_status or "Live")

    def answer_cancel(self, order: TtOrder, confirm: bool) -> None:
        """The broker confirms (``Cancelled``) or refuses (back to working) a requested cancel."""
        if order.status != "Cancel Requested":
            raise ValueError(f"order {order.id} has no cancel pending")
        if confirm:
            self.set_status(order, "Cancelled")
        else:
            self.set_status(order, order.prev_status or "Live")

    # -- the API (answers of the fake client) -------------------------------------------------------

    def _count(self, kind: str) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1

    def _check_up(self, method: str, path: str) -> None:
        if self.down:
            raise TastytradeTransportError("connection failed (ConnectionError)", method=method, path=path)

    def _lost(self, method: str, path: str) -> None:
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise TastytradeTransportError("timed out (ReadTimeout)", method=method, path=path, timed_out=True)

    def _get(self, oid: str | int, method: str) -> TtOrder:
        path = f"/orders/{oid}"
        text = str(oid)
        order = self.orders.get(int(text)) if text.isdigit() else None
        if order is None:
            raise NotFoundError(404, "record_not_found", f"order {oid} not found", method=method, path=path)
        return order

    def place(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /orders``."""
        self._count("POST")
        self._check_up("POST", "/orders")
        outcome = self.plan.pop(0) if self.plan else "accept"
        if outcome == "refuse":
            raise TastytradeApiError(422, "margin_check_failed", "insufficient buying power", method="POST",
                                     path="/orders")
        if outcome == "unknown_absent":
            raise ServerError(502, "bad_gateway", "upstream unavailable", method="POST", path="/orders")
        raw_legs = payload["legs"]
        quantities = [int(leg["quantity"]) for leg in raw_legs]
        units = math.gcd(*quantities) if len(quantities) > 1 else quantities[0]
        legs = [(str(leg["symbol"]), str(leg["action"]), int(leg["quantity"]) // units if len(raw_legs) > 1 else 1)
                for leg in raw_legs]
        price: Decimal | None = None
        if payload.get("price") is not None:
            price = Decimal(str(payload["price"]))
            if payload.get("price-effect") == "Credit":
                price = -price
        ext = payload.get("external-identifier")
        order = self.new_order(legs, units, ext=ext, ticket_ref=ext, price=price, status=self.initial_status,
                               gives_count=self.gives_count, as_text=self.as_text)
        if outcome == "unknown_present":
            raise TastytradeTransportError("timed out (ReadTimeout)", method="POST", path="/orders", timed_out=True)
        answer = order.to_json(_ACCOUNT)
        self._lost("POST", "/orders")
        return {"order": answer, "warnings": []}

    def get(self, oid: str | int) -> dict[str, Any]:
        """``GET /orders/{id}``."""
        self._count("GET")
        self._check_up("GET", f"/orders/{oid}")
        return self._get(oid, "GET").to_json(_ACCOUNT)

    def live(self, statuses: Sequence[str] | None) -> list[dict[str, Any]]:
        """``GET /orders/live`` (every order of the day, filtered by status)."""
        self._count("LIST")
        self._check_up("GET", "/orders/live")
        wanted = set(statuses or ())
        return [o.to_json(_ACCOUNT) for o in self.orders.values() if not wanted or o.status in wanted]

    def history(self, start_at: dt.datetime | None, statuses: Sequence[str] | None) -> list[dict[str, Any]]:
        """``GET /orders`` from ``start_at``, newest first."""
        self._count("LIST")
        self._check_up("GET", "/orders")
        wanted = set(statuses or ())
        chosen = [o for o in self.orders.values()
                  if (start_at is None or o.received_at >= start_at) and (not wanted or o.status in wanted)]
        chosen.sort(key=lambda o: o.id, reverse=True)
        return [o.to_json(_ACCOUNT) for o in chosen]

    def cancel(self, oid: str | int) -> dict[str, Any]:
        """``DELETE /orders/{id}``: ``Cancel Requested``; the answer echoes the order."""
        self._count("DELETE")
        path = f"/orders/{oid}"
        self._check_up("DELETE", path)
        order = self._get(oid, "DELETE")
        if order.terminal or order.status in ("Contingent", "Replace Requested"):
            raise TastytradeApiError(422, "order_not_cancellable", f"order {order.id} is {order.status} and cannot "
                                     "be cancelled", method="DELETE", path=path)
        prior = order.to_json(_ACCOUNT)
        if order.status != "Cancel Requested":
            order.prev_status = order.status
            self.set_status(order, "Cancel Requested")
        self._lost("DELETE", path)
        return prior if self.echo_prior else order.to_json(_ACCOUNT)

    def replace(self, oid: str | int, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /orders/{id}``: a NEW order (``Contingent``) that replaces ``oid`` once applied."""
        self._count("PUT")
        path = f"/orders/{oid}"
        self._check_up("PUT", path)
        order = self._get(oid, "PUT")
        if (order.terminal or order.status in ("Cancel Requested", "Replace Requested", "Contingent")
                or self.pending_replacement(order) is not None or order.remaining == 0):
            raise TastytradeApiError(422, "order_not_editable", f"order {order.id} is {order.status} and cannot be "
                                     "replaced", method="PUT", path=path)
        price = Decimal(str(payload["price"]))
        if payload.get("price-effect") == "Credit":
            price = -price
        units = order.remaining
        if payload.get("legs"):
            first = payload["legs"][0]
            units = int(first["quantity"]) // (order.legs[0].ratio if order.combo else 1)
        new = self.new_order([(leg.symbol, leg.action, leg.ratio) for leg in order.legs], units,
                             ext=payload.get("external-identifier") or order.ext, ticket_ref=order.ticket_ref,
                             price=price, status="Contingent", gives_count=order.gives_count, as_text=order.as_text)
        new.replaces = order.id
        order.replacing = new.id
        order.prev_status = order.status
        self.set_status(order, "Replace Requested")
        answer = new.to_json(_ACCOUNT)
        self._lost("PUT", path)
        return answer

    def positions(self) -> list[dict[str, Any]]:
        """``GET /positions``: every executed contract of the account (other apps' too)."""
        self._count("GET")
        self._check_up("GET", "/positions")
        out = []
        for symbol, qty in sorted(self.truth_positions(ours_only=False).items(), key=lambda kv: kv[0].occ):
            out.append({"instrument-type": "Equity Option", "symbol": symbol.occ, "quantity": abs(qty),
                        "quantity-direction": "Long" if qty > 0 else "Short"})
        return out


_ACCOUNT = "5WT00001"


def _normalise(parts: Iterable[int], total: int) -> list[int]:
    """Fill record sizes summing to ``total`` (the drawn sizes, cut or topped up)."""
    out: list[int] = []
    left = total
    for p in parts:
        if left <= 0:
            break
        take = min(max(1, p), left)
        out.append(take)
        left -= take
    if left > 0:
        out.append(left)
    return out


class WireTastytradeClient:
    """An in-process fake of ONLY :class:`~atomic_orders.backends.tastytrade.client.TastytradeApiClient`.

    Same methods and answers (the ``data`` of each envelope) as the real client, from a
    :class:`TtAccount`; errors are the real client's exception classes (a transport error while
    the account is ``down``, ``TastytradeApiError`` 4xx/5xx as the API answers them). The real
    backend, monitor and parser run unchanged on top of it.
    """

    def __init__(self, account: TtAccount) -> None:
        self.account = account
        self.config = TastytradeConfig(account_number=_ACCOUNT)
        self.request_counts = account.requests

    def __repr__(self) -> str:
        return "WireTastytradeClient()"

    @property
    def requests_sent(self) -> int:
        """Requests answered or refused so far (all kinds)."""
        return sum(self.account.requests.values())

    def close(self) -> None:
        """Nothing to close."""

    def positions(self) -> list[dict[str, Any]]:
        """``GET /accounts/{n}/positions``."""
        return self.account.positions()

    def dry_run(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /orders/dry-run``: always valid."""
        return {"order": dict(order), "warnings": []}

    def place_order(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /accounts/{n}/orders``."""
        return self.account.place(order)

    def get_order(self, order_id: str | int) -> dict[str, Any]:
        """``GET /accounts/{n}/orders/{id}``."""
        return self.account.get(order_id)

    def live_orders(self, statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """``GET /accounts/{n}/orders/live``."""
        return self.account.live(statuses)

    def list_orders(self, *, start_date: dt.date, start_at: dt.datetime | None = None, end_date: dt.date | None = None,
                    statuses: Sequence[str] | None = None, max_pages: int | None = None,
                    complete: bool = False) -> Iterator[dict[str, Any]]:
        """``GET /accounts/{n}/orders`` (newest first); one page here, so always complete."""
        del start_date, end_date, max_pages, complete
        return iter(self.account.history(start_at, statuses))

    def cancel_order(self, order_id: str | int) -> dict[str, Any]:
        """``DELETE /accounts/{n}/orders/{id}``."""
        return self.account.cancel(order_id)

    def replace_order(self, order_id: str | int, order: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /accounts/{n}/orders/{id}``."""
        return self.account.replace(order_id, order)


# -- TastyTrade strategies ---------------------------------------------------------------------------


def fill_splits(max_parts: int = 3) -> st.SearchStrategy[list[int]]:
    """How a leg's contracts are split into fill records (sizes; cut or topped up to the total)."""
    return st.lists(st.integers(1, 4), min_size=1, max_size=max_parts)


def leg_prices() -> st.SearchStrategy[Decimal]:
    """Leg fill prices (positive, on a 0.05 grid)."""
    return st.integers(1, 400).map(lambda k: Decimal(k) * Decimal("0.05"))


def tt_initial_statuses() -> st.SearchStrategy[str]:
    """The status a placed order starts in (its POST answer and first reads)."""
    return st.sampled_from(["Received", "Routed", "In Flight", "Live"])


def tt_kill_statuses() -> st.SearchStrategy[str]:
    """Final statuses that end an order without filling it completely."""
    return st.sampled_from(list(TT_KILLS))


def submit_plans() -> st.SearchStrategy[str]:
    """A submission's outcome: accepted, refused, or of unknown outcome with or without the order."""
    return st.sampled_from(list(SUBMIT_PLANS))


@attrs.frozen
class ForeignOrder:
    """Another app's order (or another process's with one of our references) on the account."""

    ext_kind: str
    status: str
    units: int
    filled_units: int
    listed: bool
    own_symbol: bool


def tt_foreign_orders() -> st.SearchStrategy[ForeignOrder]:
    """Orders the executor must never fold into a ticket: other external identifiers (or none), or
    one of our references on an order received long before ours (another process)."""
    return st.builds(
        ForeignOrder,
        ext_kind=st.sampled_from(["none", "other_app", "our_ref"]),
        status=st.sampled_from(["Received", "Live", "Cancel Requested", "Filled", "Cancelled", "Rejected", "Expired"]),
        units=st.integers(1, 5),
        filled_units=st.integers(0, 5),
        listed=st.booleans(),
        own_symbol=st.booleans(),
    )


# ---------------------------------------------------------------------------------------------
# LEAN

#: Statuses a LEAN event may carry a fill on (``NONE``: recorded on the ticket, never forwarded).
LEAN_FILL_STATUSES: tuple[str, ...] = ("natural", "update_submitted", "cancel_pending", "canceled", "none")


def lean_fill_statuses() -> st.SearchStrategy[str]:
    """On which status a leg fill is reported (``natural``: ``PARTIALLY_FILLED``/``FILLED``)."""
    return st.sampled_from(list(LEAN_FILL_STATUSES))


class InertBroker(BrokerSimulator):
    """A simulated brokerage that records requests and never emits an event by itself.

    Market, quotes and clock are the simulator's; :meth:`submit` follows :attr:`plan`
    (see :data:`SUBMIT_PLANS`); while :attr:`down`, cancels and replaces raise
    :class:`~atomic_orders.fsm.errors.BrokerUnavailable` (LEAN: -8, the order's status falls back silently).
    """

    def __init__(self, seed: int = 5) -> None:
        super().__init__(seed, ChaosProfile.none(), event_log=False)
        self.received: dict[str, OrderRequest] = {}
        self.cancels: list[str] = []
        self.replaces: list[tuple[str, Decimal, int | None]] = []
        self.plan: list[str] = []
        self.down = False

    def submit(self, request: OrderRequest) -> None:
        """Receive an order (or not, as planned)."""
        outcome = self.plan.pop(0) if self.plan else "accept"
        ref = request.order_ref
        if outcome == "refuse":
            raise SubmissionRefused(ref, "refused (planned)")
        if outcome in ("accept", "unknown_present"):
            self.received[ref] = request
            self.orders_seen.append(request)
        if outcome != "accept":
            raise SubmissionOutcomeUnknown(ref, f"timeout (planned, {outcome})")

    def cancel(self, order_ref: str) -> None:
        """Note a cancel request (or fail it while down)."""
        if self.down:
            raise BrokerUnavailable(f"cancel of {order_ref}: brokerage unreachable")
        self.cancels.append(order_ref)

    def replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        """Note an update request (or fail it while down)."""
        if self.down:
            raise BrokerUnavailable(f"update of {order_ref}: brokerage unreachable")
        self.replaces.append((order_ref, limit_price, quantity))

    def poll_events(self) -> list[BrokerEvent]:
        """Nothing: every event comes from the test."""
        return []

    def order_status(self, order_ref: str) -> str | None:
        """``working`` for an order that reached the brokerage, else None."""
        return "working" if order_ref in self.received else None
