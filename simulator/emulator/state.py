"""The emulated TastyTrade account: order JSON in and out, orders matched by a BrokerSimulator.

This module translates; it decides nothing about fills. A placed order becomes an
:class:`~atomic_orders.fsm.orders.OrderRequest` for the simulator (ratios = leg quantities / their gcd, the
signed net from ``price`` + ``price-effect``, our ``external-identifier`` as its reference); the
simulator's deliveries (:class:`~atomic_orders.fsm.orders.BrokerEvent`: acknowledgements, fills, cancels,
replaces, expiries, with the simulator's latency, duplicates and reordering) are folded into the
order objects the API shows.

Rules the reference asks for (§9): at most 4 legs, distinct leg symbols, no multi-leg market
orders (422 ``preflight_check_failure``); ``Routed`` in the POST answer, then ``In Flight``, then
``Live``; a replace (PUT) answers a NEW order id in ``Contingent`` (``contingent-status: Pending
Order``) while its original shows ``Replace Requested``; once the simulator applies it the original
ends ``Cancelled`` with ``edited: true`` and the replacement goes ``Live`` with the remaining size;
fills are listed per leg, cumulatively, in every answer. Nothing is ever lost: duplicated
deliveries are recognised by the simulator's fill id, and when an order turns final its fills
are completed from the simulator's truth (a fill reported late by the simulator is already in the
final answer).

Simplifications (documented, not hidden): one account; market orders only with one leg; the
``buying-power-effect`` and ``fee-calculation`` blocks are plausible constants (every field of
reference 3.3); positions carry the fields of reference 4.2, their prices from the listed fills
and the simulator's market; a DELETE or PUT on
a final order answers 422 (``order_not_cancellable`` / ``order_not_editable``, codes inferred).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from atomic_orders.backends.tastytrade.payloads import format_price, parse_action, signed_price
from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused, ValidationError
from atomic_orders.fsm.events import (
    Acknowledged,
    Canceled,
    CancelRejected,
    Expired,
    Fill,
    Rejected,
    Updated,
    UpdateRejected,
)
from atomic_orders.fsm.leg import Leg, PositionEffect
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.records import BUYING_POWER

__all__ = ["EmulatedAccount", "EmulatorError"]

_WORKING = frozenset({"Received", "Routed", "In Flight", "Contingent", "Live", "Cancel Requested",
                      "Replace Requested"})
_TERMINAL = frozenset({"Filled", "Cancelled", "Expired", "Rejected", "Removed", "Partially Removed"})
_CENT = Decimal("0.01")
_TIF = {"Day": TimeInForce.DAY, "GTC": TimeInForce.GTC}


class EmulatorError(Exception):
    """An error answer: HTTP status and the API's error envelope."""

    def __init__(self, status: int, code: str | int, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors)

    def body(self) -> dict[str, Any]:
        """``{"error": {"code", "message"[, "errors"]}}``."""
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            err["errors"] = self.errors
        return {"error": err}


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def _bad(domain: str, reason: str) -> EmulatorError:
    return EmulatorError(400, "validation_error", f"{domain} {reason}", [{"domain": domain, "reason": reason}])


def _preflight(code: str, message: str) -> EmulatorError:
    return EmulatorError(422, "preflight_check_failure", message, [{"code": code, "message": message}])


class _Leg:
    __slots__ = ("action", "fills", "option", "quantity", "ratio", "sign", "symbol")

    def __init__(self, symbol: str, option: OptionSymbol, action: str, ratio: int, quantity: int) -> None:
        self.symbol = symbol
        self.option = option
        self.action = action
        self.ratio = ratio
        self.quantity = quantity
        self.sign = 1 if action.startswith("Buy") else -1
        self.fills: list[dict[str, Any]] = []

    @property
    def filled(self) -> int:
        return sum(int(f["quantity"]) for f in self.fills)

    def to_json(self, withhold: bool = False) -> dict[str, Any]:
        return {
            "instrument-type": "Equity Option",
            "symbol": self.symbol,
            "quantity": self.quantity,
            # the record's own count: it includes fills the list withholds
            "remaining-quantity": max(0, self.quantity - self.filled),
            "action": self.action,
            "fills": [] if withhold else [dict(f) for f in self.fills],
        }


class _Order:
    """One order object as the API shows it."""

    def __init__(self, oid: int, ref: str, legs: list[_Leg], size: int, order_type: str, tif: str,
                 price: Decimal | None, now: dt.datetime) -> None:
        self.id = oid
        self.ref = ref  # the simulator's reference of the ticket this order belongs to
        self.legs = legs
        self.size = size
        self.order_type = order_type
        self.tif = tif
        self.price = price  # signed net, debit positive (per contract for one leg: positive)
        self.status = "Routed"
        self.prev_status: str | None = None
        self.external_identifier: str | None = None
        self.source: str | None = None
        self.received_at = now
        self.updated_at = now
        self.in_flight_at: dt.datetime | None = None
        self.live_at: dt.datetime | None = None
        self.cancelled_at: dt.datetime | None = None
        self.terminal_at: dt.datetime | None = None
        self.reject_reason: str | None = None
        self.replaces: int | None = None
        self.replacing: int | None = None
        self.edited = False
        self.contingent_status: str | None = None
        #: Scenario: the legs list no fills (``remaining-quantity`` still counts them).
        self.withhold = False

    @property
    def terminal(self) -> bool:
        return self.status in _TERMINAL

    @property
    def combo(self) -> bool:
        return len(self.legs) > 1

    def filled_units(self) -> int:
        if not self.combo:
            return self.legs[0].filled
        return min(leg.filled // leg.ratio for leg in self.legs)

    def fully_filled(self) -> bool:
        return all(leg.filled >= leg.quantity for leg in self.legs)

    def set_status(self, status: str, now: dt.datetime) -> None:
        self.status = status
        self.updated_at = now
        if status == "In Flight" and self.in_flight_at is None:
            self.in_flight_at = now
        if status == "Live" and self.live_at is None:
            self.live_at = now
        if status == "Cancelled":
            self.cancelled_at = now
        if status in _TERMINAL and self.terminal_at is None:
            self.terminal_at = now

    def to_json(self, account: str) -> dict[str, Any]:
        root = self.legs[0].option
        out: dict[str, Any] = {
            "id": self.id,
            "account-number": account,
            "time-in-force": self.tif,
            "order-type": self.order_type,
            "size": self.size,
            "underlying-symbol": root.underlying,
            "underlying-instrument-type": "Equity",
            "status": self.status,
            "cancellable": self.status in _WORKING and self.status != "Cancel Requested",
            "editable": self.status in ("Routed", "In Flight", "Live", "Received"),
            "edited": self.edited,
            "received-at": _iso(self.received_at),
            "updated-at": _ms(self.updated_at),
            # 32 hex digits as recorded (LEAN Post_Submit_Order_Response.json); derived, so stable per order
            "global-request-id": hashlib.md5(f"{account}/{self.id}/{self.ref}".encode()).hexdigest(),
            "legs": [leg.to_json(self.withhold) for leg in self.legs],
        }
        if self.price is not None:
            out["price"] = format_price(self.price)
            out["price-effect"] = "Credit" if self.price < 0 else "Debit"
        optional = {
            "external-identifier": self.external_identifier,
            "source": self.source,
            "in-flight-at": _iso(self.in_flight_at) if self.in_flight_at else None,
            "live-at": _iso(self.live_at) if self.live_at else None,
            "cancelled-at": _iso(self.cancelled_at) if self.cancelled_at else None,
            "terminal-at": _iso(self.terminal_at) if self.terminal_at else None,
            "reject-reason": self.reject_reason,
            "replaces-order-id": self.replaces,
            "replacing-order-id": self.replacing,
            "contingent-status": self.contingent_status,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


class _Chain:
    """Every order of one simulator order (the original and its replacements)."""

    __slots__ = ("active", "ids", "pending", "reject_reason", "rejecting", "seen_fills", "total")

    def __init__(self, first: int, total: int) -> None:
        self.ids = [first]
        self.active = first
        self.pending: int | None = None
        self.total = total
        self.seen_fills: set[str] = set()
        #: Scenario: after its first fill the order is rejected with this reason (None: never).
        self.reject_reason: str | None = None
        #: The simulator was asked to stop the order; its ``Canceled`` shows as ``Rejected``.
        self.rejecting = False


class EmulatedAccount:
    """The account's orders and positions, kept in step with a :class:`BrokerSimulator`.

    Not thread-safe by itself: the HTTP server holds a lock around every call (and around the
    driver's :meth:`BrokerSimulator.advance_to` followed by :meth:`pump`).
    """

    def __init__(self, simulator: BrokerSimulator, account_number: str = "5WT00001", first_order_id: int = 310001,
                 ) -> None:
        self.sim = simulator
        self.account_number = account_number
        self.orders: dict[int, _Order] = {}
        self._chains: dict[str, _Chain] = {}
        self._next_id = first_order_id
        self._fill_seq = 0
        self._refs_used: dict[str, int] = {}
        #: Orders placed through the API, by external identifier (for tests: "no duplicate").
        self.placed_by_external_id: dict[str, list[int]] = {}
        self._refusals: list[tuple[re.Pattern[str], str]] = []
        #: Dry runs refused: (pattern, message, HTTP status of the refusal).
        self._dry_run_refusals: list[tuple[re.Pattern[str], str, int]] = []
        self._withhold: list[re.Pattern[str]] = []
        self._reject_after_fill: list[tuple[re.Pattern[str], str]] = []
        self._echo_prior: list[re.Pattern[str]] = []
        self._to_reject: set[str] = set()
        self._tamper: list[tuple[re.Pattern[str], Callable[[dict[str, Any]], Any]]] = []
        #: Raw records served after the account's own orders in ``/orders/live`` and ``/orders``
        #: (another application's orders, or anything a test wants the client to read), as given.
        self.foreign_records: list[Any] = []
        #: What each order looked like when it was last pushed (see :meth:`changed_orders`).
        self._pushed: dict[int, tuple[Any, ...]] = {}

    def changed_orders(self, views: bool = True) -> list[tuple[str | None, Any]]:
        """Orders that changed since the last call, as ``(external identifier, order JSON)``, by id.

        A change is anything an answer would show differently: status, fills, ``updated-at``,
        size, links, reasons (the account streamer pushes each one as an ``Order`` notification).
        ``views=False``: only remember the changes (nobody listens), the JSON is ``None``.
        """
        out: list[tuple[str | None, Any]] = []
        for oid, order in self.orders.items():
            sig = (order.status, order.updated_at, tuple(len(leg.fills) for leg in order.legs), order.size,
                   order.withhold, order.replacing, order.contingent_status, order.reject_reason, order.edited)
            if self._pushed.get(oid) != sig:
                self._pushed[oid] = sig
                out.append((order.external_identifier, self._view(order) if views else None))
        return out

    def refuse(self, pattern: str, message: str) -> None:
        """Refuse (422 ``preflight_check_failure``) new orders whose external identifier matches ``pattern``."""
        self._refusals.append((re.compile(pattern), message))

    def refuse_dry_run(self, pattern: str, message: str, status: int = 200) -> None:
        """Dry runs of orders whose external identifier matches ``pattern`` fail their preflight.

        ``status`` 200: the recorded shape (the Go SDK's ``orderErrorDryRunResp``): ``data`` with a
        ``buying-power-effect`` that leaves the account short (``new-buying-power-effect: Debit``)
        and a top-level ``error`` ``preflight_check_failure`` with ``errors[{code:
        margin_check_failed, message}]``. A 4xx ``status``: that ``error`` in the plain error
        envelope. Orders themselves are not refused (see :meth:`refuse`).
        """
        self._dry_run_refusals.append((re.compile(pattern), message, status))

    def dry_run_refusal(self, body: Any) -> tuple[int, dict[str, Any]] | None:
        """``(status, whole answer)`` when a dry run of ``body`` is to be refused (see :meth:`refuse_dry_run`)."""
        ext = body.get("external-identifier") if isinstance(body, dict) else None
        for pattern, message, status in self._dry_run_refusals:
            if isinstance(ext, str) and pattern.search(ext):
                error = _preflight("margin_check_failed", message)
                error.message = "One or more preflight checks failed"
                if status != 200:
                    return status, error.body()
                answer = self._placed_answer({})
                effect = answer["buying-power-effect"]
                effect.update({"change-in-buying-power": BUYING_POWER, "change-in-buying-power-effect": "Debit",
                               "new-buying-power": "1.0", "new-buying-power-effect": "Debit",
                               "effect": "Debit"})
                return 200, {"data": {"buying-power-effect": effect}, **error.body()}
        return None

    # -- scenario knobs: shapes the real API produces that a calm simulator never would ----------

    @staticmethod
    def _matches(patterns: Iterable[re.Pattern[str]], ext: str | None) -> bool:
        return ext is not None and any(p.search(ext) for p in patterns)

    def withhold_fills(self, pattern: str) -> None:
        """Orders whose external identifier matches ``pattern`` (existing and new, replacements too)
        list no leg ``fills`` while ``remaining-quantity`` still counts them: a ``Filled`` order
        without its fills, the schema drift the reference reports (§8, tastyware #89)."""
        compiled = re.compile(pattern)
        self._withhold.append(compiled)
        for order in self.orders.values():
            if self._matches([compiled], order.external_identifier):
                order.withhold = True

    def release_fills(self) -> None:
        """Stop withholding: every order lists its fills again."""
        self._withhold.clear()
        for order in self.orders.values():
            order.withhold = False

    def reject_after_fill(self, pattern: str, reason: str = "rejected by the exchange") -> None:
        """New orders whose external identifier matches ``pattern`` are rejected after their first
        fill (unless that fill completes them): the order ends ``Rejected`` with ``reject-reason``
        and the fills it had. The simulator is asked to stop the order, so the account's
        positions hold exactly those fills; the status turns when the simulator confirms."""
        self._reject_after_fill.append((re.compile(pattern), reason))

    def echo_prior_state(self, pattern: str) -> None:
        """A DELETE of an order whose external identifier matches ``pattern`` answers the order as
        the request found it (e.g. still ``Live``), not as ``Cancel Requested``."""
        self._echo_prior.append(re.compile(pattern))

    def tamper(self, pattern: str, rewrite: Callable[[dict[str, Any]], Any]) -> None:
        """Every answer that shows an order whose external identifier matches ``pattern`` shows
        ``rewrite(order JSON)`` instead (a copy; whatever it returns, any JSON, is served as is):
        the broker answers a test wants to be wrong (an absurd fill price, an id that is not an
        integer ...). The simulator's own state is untouched."""
        self._tamper.append((re.compile(pattern), rewrite))

    def stop_tampering(self) -> None:
        """Orders are shown as they are again (and no foreign record is served)."""
        self._tamper.clear()
        self.foreign_records.clear()

    def _view(self, order: _Order) -> Any:
        """The order's JSON as answers show it (rewritten by :meth:`tamper` when it matches)."""
        view: Any = order.to_json(self.account_number)
        for pattern, rewrite in self._tamper:
            if self._matches([pattern], order.external_identifier):
                view = rewrite(copy.deepcopy(view))
        return view

    def _start_reject(self, chain: _Chain) -> None:
        order = self.orders[chain.active]
        try:
            self.sim.cancel(order.ref)
        except BrokerUnavailable:
            self._to_reject.add(order.ref)  # the simulator is down: ask again on the next pump
            return
        self._to_reject.discard(order.ref)
        chain.rejecting = True

    @property
    def now(self) -> dt.datetime:
        """The simulator's (virtual) time."""
        return self.sim.clock.now()

    # -- simulator deliveries -------------------------------------------------------------------

    def pump(self) -> int:
        """Fold every delivery the simulator has made into the order objects; return how many."""
        events = self.sim.poll_events()
        for be in events:
            chain = self._chains.get(be.order_ref)
            if chain is not None:
                self._apply(chain, be.event)
        for ref in sorted(self._to_reject):
            pending = self._chains[ref]
            if not self.orders[pending.active].terminal and not pending.rejecting:
                self._start_reject(pending)
            else:
                self._to_reject.discard(ref)
        return len(events)

    def _apply(self, chain: _Chain, event: object) -> None:
        now = self.now
        active = self.orders[chain.active]
        if isinstance(event, Acknowledged):
            first = self.orders[chain.ids[0]]
            if first.status in ("Routed", "In Flight", "Received"):
                first.set_status("Live", now)
            elif first.prev_status in ("Routed", "In Flight", "Received"):
                first.prev_status = "Live"
                first.live_at = first.live_at or now
        elif isinstance(event, Fill):
            self._record_fill(chain, event)
        elif isinstance(event, Rejected):
            if not active.terminal:
                active.reject_reason = event.reason
                active.set_status("Rejected", now)
            self._drop_pending(chain, "Rejected", now, event.reason)
        elif isinstance(event, Canceled):
            self._sync_truth(chain)
            if not active.terminal and chain.rejecting:
                active.reject_reason = chain.reject_reason
                active.set_status("Rejected", now)
            elif not active.terminal:
                active.set_status("Cancelled", now)
            self._drop_pending(chain, "Cancelled", now, None)
        elif isinstance(event, Expired):
            self._sync_truth(chain)
            if not active.terminal:
                active.set_status("Expired", now)
            self._drop_pending(chain, "Expired", now, None)
        elif isinstance(event, CancelRejected):
            if active.status == "Cancel Requested":
                back = active.prev_status or "Live"
                active.prev_status = None
                active.set_status("Filled" if active.fully_filled() else back, now)
        elif isinstance(event, Updated):
            self._replace_applied(chain, now)
        elif isinstance(event, UpdateRejected):
            self._replace_refused(chain, event.reason, now)

    def _drop_pending(self, chain: _Chain, status: str, now: dt.datetime, reason: str | None) -> None:
        if chain.pending is None:
            return
        repl = self.orders[chain.pending]
        repl.contingent_status = None
        if reason is not None:
            repl.reject_reason = reason
        repl.set_status(status, now)
        chain.pending = None

    def _replace_applied(self, chain: _Chain, now: dt.datetime) -> None:
        if chain.pending is None:
            return
        old = self.orders[chain.active]
        new = self.orders[chain.pending]
        chain.pending = None
        remaining = max(0, chain.total - self._chain_units(chain))
        new.size = remaining
        for leg in new.legs:
            leg.quantity = remaining * leg.ratio if new.combo else remaining
        new.contingent_status = None
        new.set_status("Live", now)
        if old.status == "Cancel Requested":  # the cancel in flight now applies to the replacement
            new.prev_status = "Live"
            new.set_status("Cancel Requested", now)
        old.edited = True
        old.prev_status = None
        old.set_status("Cancelled", now)
        chain.active = new.id

    def _replace_refused(self, chain: _Chain, reason: str, now: dt.datetime) -> None:
        if chain.pending is None:
            return
        old = self.orders[chain.active]
        new = self.orders[chain.pending]
        chain.pending = None
        new.contingent_status = None
        new.reject_reason = reason
        new.set_status("Rejected", now)
        old.replacing = None
        if old.status == "Replace Requested":
            old.set_status(old.prev_status or "Live", now)
            old.prev_status = None

    def _chain_units(self, chain: _Chain) -> int:
        return sum(self.orders[oid].filled_units() for oid in chain.ids)

    def _sync_truth(self, chain: _Chain) -> None:
        """Before an order turns final: add fills the simulator made but has not delivered yet."""
        for fill in self.sim.order_fills(self.orders[chain.ids[0]].ref):
            self._record_fill(chain, fill)

    def _record_fill(self, chain: _Chain, fill: Fill) -> None:
        if fill.fill_id in chain.seen_fills:
            return  # a duplicated delivery
        chain.seen_fills.add(fill.fill_id)
        order = self.orders[chain.active]
        self._fill_seq += 1
        seq = self._fill_seq
        when = _iso(fill.time)
        prices = self._leg_prices(order, fill.price)
        for i, (leg, price) in enumerate(zip(order.legs, prices, strict=True)):
            leg.fills.append({
                "fill-id": f"{i + 1}_EMU{seq:09d}",
                "quantity": fill.quantity * leg.ratio if order.combo else fill.quantity,
                "fill-price": format_price(price),
                "filled-at": when,
                "destination-venue": "EMULATOR_SIM",
                "ext-exec-id": f"X{seq:09d}{i + 1}",
                "ext-group-fill-id": f"G{seq:09d}",
            })
        now = self.now
        order.updated_at = now
        if order.status == "Cancel Requested":
            if order.fully_filled():
                order.prev_status = None
                order.set_status("Filled", now)
        elif not order.terminal and order.fully_filled():
            order.set_status("Filled", now)
            if chain.pending is not None:  # "subsequent fills of the original abort the replacement"
                self._replace_refused(chain, "original order filled", now)
        if chain.reject_reason is not None and not chain.rejecting and not order.terminal:
            self._start_reject(chain)

    def _leg_prices(self, order: _Order, net: Decimal) -> list[Decimal]:
        """Per-leg fill prices whose signed, ratio-weighted sum is exactly the simulator's net per unit."""
        if not order.combo:
            return [net]
        seconds = self.sim.clock.seconds
        prices: list[Decimal] = []
        for leg in order.legs:
            q = self.sim.market.quote(leg.option, seconds)
            mid = ((q.bid + q.ask) / 2).quantize(_CENT, rounding=ROUND_HALF_UP)
            prices.append(max(mid, _CENT))
        residual = net - sum((leg.sign * leg.ratio * p for leg, p in zip(order.legs, prices, strict=True)),
                             Decimal(0))
        if residual == 0:
            return prices
        # raise a leg's price where possible (never below a cent): a buy leg for a positive residual
        want = 1 if residual > 0 else -1
        order_of = sorted(range(len(order.legs)), key=lambda i: (order.legs[i].sign != want, order.legs[i].ratio))
        for i in order_of:
            leg = order.legs[i]
            step = residual / (leg.sign * leg.ratio)
            candidate = prices[i] + step
            if candidate >= _CENT:
                prices[i] = candidate
                return prices
        prices[order_of[0]] += residual / (order.legs[order_of[0]].sign * order.legs[order_of[0]].ratio)
        return prices

    # -- requests -------------------------------------------------------------------------------

    def _parse_order_body(self, body: Any, *, replace: bool = False) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad("body", "must be a JSON object")
        order_type = body.get("order-type")
        if order_type not in ("Limit", "Market"):
            raise _bad("order-type", f"{order_type!r} is not supported (Limit, Market)")
        tif = body.get("time-in-force")
        if tif not in _TIF:
            raise _bad("time-in-force", f"{tif!r} is not supported (Day, GTC)")
        price: Decimal | None = None
        if order_type == "Limit":
            if body.get("price") is None or body.get("price-effect") not in ("Debit", "Credit"):
                raise _bad("price", "a limit order needs price and price-effect (Debit/Credit)")
            try:
                price = signed_price(body.get("price"), body.get("price-effect"))
            except ValidationError as err:
                raise _bad("price", err.reason) from None
        elif body.get("price") is not None:
            raise _bad("price", "a market order carries no price")
        ext = body.get("external-identifier")
        if ext is not None and (not isinstance(ext, str) or not ext or len(ext) > 255):
            raise _bad("external-identifier", "must be a string of 1-255 characters")
        legs_raw = body.get("legs")
        legs: list[tuple[str, OptionSymbol, str, int]] = []
        if legs_raw is not None or not replace:
            if not isinstance(legs_raw, list) or not legs_raw:
                raise _bad("legs", "must be a non-empty list")
            if len(legs_raw) > 4:
                raise _preflight("too_many_legs", "equity option orders may have at most 4 legs")
            for i, leg in enumerate(legs_raw):
                legs.append(self._parse_leg(leg, i))
            symbols = [leg[0] for leg in legs]
            if len(set(symbols)) != len(symbols):
                raise _preflight("duplicate_leg_symbols", "each leg of an order must use a distinct symbol")
            if order_type == "Market" and len(legs) > 1:
                raise _preflight("multi_leg_market_order", "multi-leg orders must be limit orders")
        return {"order_type": order_type, "tif": tif, "price": price, "ext": ext, "legs": legs,
                "source": body.get("source") if isinstance(body.get("source"), str) else None}

    @staticmethod
    def _parse_leg(leg: Any, i: int) -> tuple[str, OptionSymbol, str, int]:
        if not isinstance(leg, dict):
            raise _bad(f"legs[{i}]", "must be an object")
        if leg.get("instrument-type") != "Equity Option":
            raise _preflight("unsupported_instrument_type",
                             f"legs[{i}]: instrument-type {leg.get('instrument-type')!r} is not supported here")
        symbol = leg.get("symbol")
        try:
            option = OptionSymbol.parse_occ(symbol) if isinstance(symbol, str) else None
        except ValidationError as err:
            raise _bad(f"legs[{i}].symbol", err.reason) from None
        if option is None:
            raise _bad(f"legs[{i}].symbol", "is missing")
        qty = leg.get("quantity")
        try:
            number = Decimal(str(qty)) if not isinstance(qty, bool) else Decimal("NaN")
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite() or number <= 0 or number != number.to_integral_value():
            raise _bad(f"legs[{i}].quantity", "must be a positive whole number")
        action = leg.get("action")
        try:
            parse_action(str(action))
        except ValidationError:
            raise _bad(f"legs[{i}].action", f"{action!r} is not an option action") from None
        return symbol, option, action, int(number)  # type: ignore[return-value]

    def _new_id(self) -> int:
        oid = self._next_id
        self._next_id += 1
        return oid

    def _sim_ref(self, ext: str | None, oid: int) -> str:
        base = ext if ext is not None else f"TT{oid}"
        n = self._refs_used.get(base, 0)
        self._refs_used[base] = n + 1
        return base if n == 0 else f"{base}#{n + 1}"

    def _request_for(self, spec: dict[str, Any], ref: str) -> tuple[OrderRequest, list[_Leg], int]:
        raw = spec["legs"]
        size = 0
        for _sym, _opt, _act, qty in raw:
            size = math.gcd(size, qty)
        combo = len(raw) > 1
        legs: list[_Leg] = []
        model_legs: list[Leg] = []
        for sym, option, action, qty in raw:
            ratio = qty // size if combo else 1
            side, effect = parse_action(action)
            legs.append(_Leg(sym, option, action, ratio, qty))
            model_legs.append(Leg(option, side, ratio, effect))
        quantity = size if combo else raw[0][3]
        price: Decimal | None = spec["price"]
        if price is not None and not combo:
            price = abs(price)
        group = ref.rsplit("-", 1)[0] if "-" in ref else ref
        purpose = Purpose.ENTRY if all(leg.position_effect is PositionEffect.OPEN for leg in model_legs) \
            else Purpose.UNWIND
        try:
            request = OrderRequest(
                order_ref=ref, group_id=group, purpose=purpose, legs=tuple(model_legs), quantity=quantity,
                order_type=OrderType.LIMIT if spec["order_type"] == "Limit" else OrderType.MARKET,
                limit_price=price, time_in_force=_TIF[spec["tif"]],
            )
        except ValidationError as err:
            raise _bad(err.field, err.reason) from None
        return request, legs, quantity

    def place(self, body: Any, *, dry_run: bool = False) -> dict[str, Any]:
        """``POST /orders`` (or ``/orders/dry-run``): the answer's ``data``."""
        spec = self._parse_order_body(body)
        now = self.now
        if dry_run:
            request, legs, size = self._request_for(spec, spec["ext"] or "dry-run")
            order = _Order(0, request.order_ref, legs, size, spec["order_type"], spec["tif"], spec["price"], now)
            order.status = "Received"
            view = order.to_json(self.account_number)
            view.pop("id")
            view["updated-at"] = 0
            return self._placed_answer(view)
        for pattern, message in self._refusals:
            if spec["ext"] is not None and pattern.search(spec["ext"]):
                raise _preflight("margin_check_failed", message)
        oid = self._new_id()
        ref = self._sim_ref(spec["ext"], oid)
        request, legs, size = self._request_for(spec, ref)
        try:
            self.sim.submit(request)
        except SubmissionRefused as err:
            raise _preflight("order_refused", err.reason) from None
        except SubmissionOutcomeUnknown:
            if self.sim.order_status(ref) is not None:  # it landed although the broker is "down"
                self._create(oid, ref, request, legs, size, spec, now)
            raise EmulatorError(503, "service_unavailable", "the order service is unavailable") from None
        order = self._create(oid, ref, request, legs, size, spec, now)
        answer = self._placed_answer(self._view(order))
        order.set_status("In Flight", now)
        return answer

    def _create(self, oid: int, ref: str, request: OrderRequest, legs: list[_Leg], size: int, spec: dict[str, Any],
                now: dt.datetime) -> _Order:
        order = _Order(oid, ref, legs, size, spec["order_type"], spec["tif"], spec["price"], now)
        if not order.combo and order.price is not None:
            order.price = abs(order.price) if legs[0].sign > 0 else -abs(order.price)
        order.external_identifier = spec["ext"]
        order.source = spec["source"]
        order.withhold = self._matches(self._withhold, spec["ext"])
        self.orders[oid] = order
        chain = _Chain(oid, request.quantity)
        for pattern, reason in self._reject_after_fill:
            if self._matches([pattern], spec["ext"]):
                chain.reject_reason = reason
                break
        self._chains[ref] = chain
        if spec["ext"] is not None:
            self.placed_by_external_id.setdefault(spec["ext"], []).append(oid)
        return order

    @staticmethod
    def _placed_answer(order: Any) -> dict[str, Any]:
        zero = {"value": "0.0", "effect": "None"}
        return {
            "order": order,
            "buying-power-effect": {
                "change-in-margin-requirement": "0.0", "change-in-margin-requirement-effect": "None",
                "change-in-buying-power": "0.0", "change-in-buying-power-effect": "None",
                "current-buying-power": BUYING_POWER, "current-buying-power-effect": "Credit",
                "new-buying-power": BUYING_POWER, "new-buying-power-effect": "Credit",
                "isolated-order-margin-requirement": "0.0", "isolated-order-margin-requirement-effect": "None",
                # A tampered answer may hold any JSON where the legs go.
                "is-spread": isinstance(order, dict) and isinstance(order.get("legs"), list) and len(order["legs"]) > 1,
                "impact": "0.0", "effect": "None",
            },
            # the keys and breakdown names of the recorded answer (reference 3.3; LEAN Post_Submit_Order_Response.json)
            "fee-calculation": {
                "regulatory-fees": zero["value"], "regulatory-fees-effect": "None",
                "regulatory-fees-breakdown": [{"name": n, **zero} for n in ("exchange", "nfa", "orf", "sec", "taf")],
                "clearing-fees": zero["value"], "clearing-fees-effect": "None",
                "clearing-fees-breakdown": [{"name": "clearing", **zero}],
                "commission": zero["value"], "commission-effect": "None",
                "commission-breakdown": [{"name": "brokerage", **zero}],
                "proprietary-index-option-fees": zero["value"], "proprietary-index-option-fees-effect": "None",
                "proprietary-fees-breakdown": [{"name": "proprietary", **zero}],
                "total-fees": zero["value"], "total-fees-effect": "None",
                "rebates": zero["value"], "rebates-effect": "None",
                "rebates-breakdown": [{"name": "rebate", **zero}],
                "per-quantity": False,
            },
            "warnings": [],
        }

    def _order(self, oid: int) -> _Order:
        order = self.orders.get(oid)
        if order is None:
            raise EmulatorError(404, "record_not_found", f"order {oid} not found")
        return order

    def get(self, oid: int) -> Any:
        """``GET /orders/{id}``."""
        return self._view(self._order(oid))

    def cancel(self, oid: int) -> Any:
        """``DELETE /orders/{id}``: ask the simulator to cancel; the order shows ``Cancel Requested``."""
        order = self._order(oid)
        chain = self._chains[order.ref]
        active = self.orders[chain.active]
        if oid not in (chain.active, chain.pending) or active.terminal:
            raise EmulatorError(422, "order_not_cancellable", f"order {oid} is {order.status} and cannot be cancelled")
        prior = self._view(order)
        if active.status != "Cancel Requested":
            try:
                self.sim.cancel(order.ref)
            except BrokerUnavailable:
                raise EmulatorError(503, "service_unavailable", "the order service is unavailable") from None
            active.prev_status = active.status
            active.set_status("Cancel Requested", self.now)
        if self._matches(self._echo_prior, order.external_identifier):
            return prior
        return self._view(order)

    def replace(self, oid: int, body: Any) -> Any:
        """``PUT /orders/{id}``: a NEW order (``Contingent``) replaces ``oid`` once the simulator applies it."""
        order = self._order(oid)
        chain = self._chains[order.ref]
        if oid != chain.active or order.terminal or chain.pending is not None or order.status == "Cancel Requested":
            raise EmulatorError(422, "order_not_editable", f"order {oid} is {order.status} and cannot be replaced")
        spec = self._parse_order_body(body, replace=True)
        if spec["order_type"] != "Limit" or order.order_type != "Limit":
            raise _preflight("order_not_editable", "only limit orders can be replaced with a limit order")
        price: Decimal = spec["price"]
        if not order.combo:
            price = abs(price)
        filled = self._chain_units(chain)
        total: int | None = None
        if spec["legs"]:
            by_symbol = {leg.symbol: leg for leg in order.legs}
            units: set[int] = set()
            for sym, _opt, action, qty in spec["legs"]:
                leg = by_symbol.get(sym)
                if leg is None or leg.action != action:
                    raise _preflight("legs_changed", "a replacement must keep the original's legs")
                units.add(qty // leg.ratio if order.combo else qty)
            if len(units) != 1 or len(spec["legs"]) != len(order.legs):
                raise _preflight("legs_changed", "a replacement must keep the original's legs and ratios")
            total = filled + units.pop()
        try:
            self.sim.replace(order.ref, price, total)
        except BrokerUnavailable:
            raise EmulatorError(503, "service_unavailable", "the order service is unavailable") from None
        now = self.now
        new_total = total if total is not None else chain.total
        chain.total = new_total
        remaining = max(0, new_total - filled)
        legs = [_Leg(leg.symbol, leg.option, leg.action, leg.ratio,
                     remaining * leg.ratio if order.combo else remaining) for leg in order.legs]
        signed = price if order.combo else (price if order.legs[0].sign > 0 else -price)
        new = _Order(self._new_id(), order.ref, legs, remaining, order.order_type, spec["tif"], signed, now)
        new.status = "Contingent"
        new.contingent_status = "Pending Order"
        new.replaces = order.id
        new.external_identifier = spec["ext"] or order.external_identifier
        new.source = spec["source"] or order.source
        new.withhold = order.withhold
        self.orders[new.id] = new
        chain.ids.append(new.id)
        chain.pending = new.id
        order.replacing = new.id
        order.prev_status = order.status
        order.set_status("Replace Requested", now)
        return self._view(new)

    # -- lists ----------------------------------------------------------------------------------

    def live(self, statuses: Iterable[str] = (), underlying: str | None = None) -> list[Any]:
        """``GET /orders/live``: every order of the (single, virtual) day, filtered."""
        wanted = set(statuses)
        out = []
        for order in self.orders.values():
            if wanted and order.status not in wanted:
                continue
            if underlying and order.legs[0].option.underlying != underlying:
                continue
            out.append(self._view(order))
        out.extend(copy.deepcopy(self.foreign_records))
        return out

    def history(self, *, start_at: dt.datetime | None, end_at: dt.datetime | None, statuses: Iterable[str] = (),
                underlying: str | None = None, newest_first: bool = True) -> list[Any]:
        """``GET /orders``: orders received in ``[start_at, end_at]``."""
        wanted = set(statuses)
        chosen = [
            o for o in self.orders.values()
            if (start_at is None or o.received_at >= start_at) and (end_at is None or o.received_at <= end_at)
            and (not wanted or o.status in wanted)
            and (not underlying or o.legs[0].option.underlying == underlying)
        ]
        chosen.sort(key=lambda o: o.id, reverse=newest_first)
        return [self._view(o) for o in chosen] + copy.deepcopy(self.foreign_records)

    def positions(self) -> list[dict[str, Any]]:
        """``GET /positions``: the simulator's (true) positions, one row per option, with the fields of
        reference 4.2 (``quantity`` a decimal string, the sign in ``quantity-direction``).

        ``average-open-price`` and ``created-at`` come from the fills this account's orders list
        (0.0 and now for a position the API never saw open); the three close prices are the
        simulator's mid now (it models no previous close); realized gains are 0.0.
        """
        now = self.now
        opened = self._open_prices()
        out = []
        for symbol, qty in sorted(self.sim.positions().items(), key=lambda kv: kv[0].occ):
            q = self.sim.quote(symbol)
            mid = format_price(((q.bid + q.ask) / 2).quantize(_CENT, ROUND_HALF_UP))
            average, created, updated = opened.get(symbol.occ, (Decimal("0.0"), now, now))
            out.append({
                "account-number": self.account_number,
                "symbol": symbol.occ,
                "instrument-type": "Equity Option",
                "underlying-symbol": symbol.underlying,
                "quantity": str(abs(qty)),
                "quantity-direction": "Long" if qty > 0 else "Short",
                "close-price": mid,
                "average-open-price": format_price(average),
                "average-yearly-market-close-price": mid,
                "average-daily-market-close-price": mid,
                "multiplier": 100,
                "cost-effect": "Debit" if qty > 0 else "Credit",
                "is-suppressed": False,
                "is-frozen": False,
                "restricted-quantity": "0.0",
                "realized-day-gain": "0.0",
                "realized-day-gain-effect": "None",
                "realized-day-gain-date": now.date().isoformat(),
                "realized-today": "0.0",
                "realized-today-effect": "None",
                "realized-today-date": now.date().isoformat(),
                "expires-at": _iso(dt.datetime.combine(symbol.expiry, dt.time(21, 0), dt.UTC)),
                "created-at": _iso(created),
                "updated-at": _iso(updated),
            })
        return out

    def _open_prices(self) -> dict[str, tuple[Decimal, dt.datetime, dt.datetime]]:
        """Per OCC symbol: (average open price, opened at, last fill at) of the open position, from
        the listed fills in time order (adding averages, reducing keeps the average, crossing zero
        reopens at the crossing fill's price)."""
        fills: list[tuple[str, str, int, Decimal]] = []
        for order in self.orders.values():
            for leg in order.legs:
                for f in leg.fills:
                    fills.append((str(f["filled-at"]), leg.option.occ, leg.sign * int(f["quantity"]),
                                  Decimal(str(f["fill-price"]))))
        fills.sort(key=lambda f: f[0])
        state: dict[str, tuple[int, Decimal, str, str]] = {}
        for when, occ, signed, price in fills:
            held, average, opened, _ = state.get(occ, (0, Decimal(0), when, when))
            after = held + signed
            if held == 0 or ((held > 0) != (after > 0) and after != 0):
                average, opened = price, when
            elif (held > 0) == (signed > 0):
                average = (average * abs(held) + price * abs(signed)) / abs(after)
            state[occ] = (after, average, opened, when)
        return {occ: (avg.quantize(Decimal("0.0001"), ROUND_HALF_UP).normalize() if avg else Decimal("0.0"),
                      dt.datetime.fromisoformat(opened), dt.datetime.fromisoformat(last))
                for occ, (held, avg, opened, last) in state.items() if held != 0}

    def quote(self, occ: str) -> dict[str, Any]:
        """Top of book of one option from the simulator's market (an emulator-only endpoint)."""
        try:
            symbol = OptionSymbol.parse_occ(occ)
        except ValidationError as err:
            raise _bad("symbol", err.reason) from None
        q = self.sim.quote(symbol)
        return {"symbol": symbol.occ, "bid": format_price(q.bid), "ask": format_price(q.ask),
                "mid": format_price((q.bid + q.ask) / 2), "updated-at": _ms(q.time)}
