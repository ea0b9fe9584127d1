"""Boundary fuzz, TastyTrade: hostile broker JSON for the parser, and served over HTTP by the emulator.

The rule at the broker boundary: a record is accepted whole and valid, or refused with an error
naming the field and the value; only the backend contract's exceptions leave the backend; the
executor's loop keeps running; nothing is sent twice after an answer that could not be read.

* Parser (thousands of records per second): order JSON with wrong types, missing and extra
  fields, absurd magnitudes, unicode and other scripts' digits, at every level (order, leg,
  fill). Property: :func:`parse_order` returns a snapshot within every bound, or raises
  :class:`MalformedResponseError` (only) naming the field; never slow; :func:`peek_identity`
  never raises; parsing and the client agree on ids.
* Over HTTP (a real emulator, client, backend and executor per example): an iron condor (combo
  or legged) whose every answer is rewritten by ``tamper_orders`` with at least one invalid
  field, beside foreign records (another application's orders, garbage) and a claimed page count,
  for a few ticks; then the broker answers honestly. Properties: every backend call raises only
  the contract's exceptions; the executor never needs its last line (``stats.boundary_errors``
  stays 0); nothing is read from a bad record (its ticket only hears ``SubmissionUnknown``);
  no order is sent twice; the poll stays within its page bound; afterwards the group settles
  and the fills the broker made are booked (committed: the broker's positions are the targets;
  rolled back: flat; the ledger equals the broker's positions).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from atomic_orders.backends.tastytrade.client import _order_id
from atomic_orders.backends.tastytrade.errors import MalformedResponseError
from atomic_orders.backends.tastytrade.parsing import (
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_TEXT,
    OrderSnapshot,
    parse_order,
    parse_order_id,
    parse_price,
    parse_quantity,
    peek_identity,
)
from atomic_orders.fsm import invariants
from atomic_orders.fsm.clock import Clock
from atomic_orders.fsm.errors import BrokerError, QuoteUnavailable
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import TERMINAL_STATES, ExecutionMode
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest, Quote
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.fsm.symbol import OptionSymbol
from tests.properties._suite import PROFILE, STATS
from tests.roles import condor_roles
from tests.tastytrade.conftest import Harness

#: Parser examples and HTTP examples per test, by profile (``ci`` stays well under a minute).
BUDGET = {"ci": (600, 30), "dev": (300, 15), "deep": (12000, 400)}
PARSER_EXAMPLES, HTTP_EXAMPLES = BUDGET[PROFILE]

# -- hostile values ---------------------------------------------------------------------------------

#: Any JSON value (what a broker could send in any field), kept small.
JSON: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)),
    max_leaves=8,
)
_ABSURD_NUMBERS = ["1e30", "1E+5000", "1e999999", "-1", "-0.05", "NaN", "Infinity", "sNaN", "0x10", "1_000",
                   "\u0663", "\uff11", "1.5e-9", "9" * 40, "", " 1", "1 ", 1e300, -1, 10**30, 2.5, True,
                   float("nan"), float("inf"), [1], {"v": 1}]
#: Values that are never a valid price (fill-price, price).
BAD_PRICE = st.sampled_from([v for v in _ABSURD_NUMBERS if v != 2.5] + ["0.0000001", "abc", None])
#: Values that are never a valid quantity.
BAD_QUANTITY = st.sampled_from([*_ABSURD_NUMBERS, "0.5", "2.5", 1.5, 10**7, "1000001", None])
#: Values that are never a valid order id.
BAD_ID = st.sampled_from(["12-34", "", "0012", "0", 0, -5, True, 1.5, 2**64, "\u0661\u0662", "1e3", "12 ",
                          [1], {"id": 1}, "x" * 300])
BAD_TEXT = st.sampled_from([None, "", 7, True, [1], {"a": "b"}, "x" * (MAX_TEXT + 1), "Live\x00", "\n"])
LONG_TEXT = st.sampled_from(["x" * (MAX_TEXT + 1), "\u00e9" * 1000])

#: One edit that makes an order record invalid: (level, key, value). ``del`` removes a required key.
Edit = tuple[str, str, Any]
_DEL = "<del>"
INVALID_EDITS: st.SearchStrategy[Edit] = st.one_of(
    st.tuples(st.just("order"), st.just("id"), st.one_of(BAD_ID, st.just(_DEL))),
    st.tuples(st.just("order"), st.just("status"), st.one_of(BAD_TEXT, st.just(_DEL))),
    st.tuples(st.just("order"), st.just("legs"), st.sampled_from([None, "nope", 3, {"a": 1}, [1], _DEL, "5x"])),
    st.tuples(st.just("order"), st.just("size"), BAD_QUANTITY.filter(lambda v: v is not None)),
    st.tuples(st.just("order"), st.just("price"), BAD_PRICE.filter(lambda v: v is not None)),
    st.tuples(st.just("order"), st.sampled_from(["replaces-order-id", "replacing-order-id"]),
              BAD_ID.filter(lambda v: v not in ("", [1], {"id": 1}))),
    st.tuples(st.just("order"), st.sampled_from(["external-identifier", "reject-reason", "order-type"]), LONG_TEXT),
    st.tuples(st.just("leg"), st.sampled_from(["symbol", "action"]), st.one_of(BAD_TEXT, st.just(_DEL))),
    st.tuples(st.just("leg"), st.just("quantity"), st.one_of(BAD_QUANTITY, st.just(_DEL))),
    st.tuples(st.just("leg"), st.just("remaining-quantity"), BAD_QUANTITY.filter(lambda v: v is not None)),
    st.tuples(st.just("leg"), st.just("fills"), st.sampled_from(["nope", 3, [1], [None], [[]]])),
    st.tuples(st.just("fill"), st.just("fill-price"), st.one_of(BAD_PRICE, st.just(_DEL))),
    st.tuples(st.just("fill"), st.just("quantity"), st.one_of(BAD_QUANTITY, st.just(_DEL))),
    # an int fill id is taken as its text: not among the invalid ones
    st.tuples(st.just("fill"), st.just("fill-id"), st.one_of(BAD_TEXT.filter(lambda v: type(v) is not int),
                                                             st.just(_DEL))),
)
#: Edits that keep a record valid (extra fields, informational fields of the wrong type).
HARMLESS_EDITS: st.SearchStrategy[Edit] = st.one_of(
    st.tuples(st.sampled_from(["order", "leg", "fill"]), st.text(min_size=1, max_size=12).map(lambda k: "zz-" + k),
              JSON),
    st.tuples(st.just("order"), st.sampled_from(["contingent-status", "live-at", "received-at", "updated-at",
                                                 "edited", "cancellable"]),
              JSON.filter(lambda v: not isinstance(v, str) or v.isprintable())),
)


def _apply(order: Any, edits: Sequence[Edit], leg_at: int, whole: Any = None) -> Any:
    """``order`` (a copy) with ``edits`` applied; ``whole`` replaces the record altogether."""
    if whole is not None:
        return whole
    if not isinstance(order, dict):
        return order
    legs = order.get("legs") if isinstance(order.get("legs"), list) else []
    for level, key, value in edits:
        if level == "order":
            target: Any = order
        else:
            if not legs:
                continue
            target = legs[leg_at % len(legs)]
            if not isinstance(target, dict):
                continue
            if level == "fill":  # the leg's first fill (one is added when the leg lists none)
                fills = target.get("fills")
                if not (isinstance(fills, list) and fills and isinstance(fills[0], dict)):
                    fills = target["fills"] = [{"fill-id": "fz-1", "quantity": 1, "fill-price": "1.00"}]
                target = fills[0]
        if value == _DEL:
            target.pop(key, None)
        elif key == "legs" and value == "5x":
            target["legs"] = [copy.deepcopy(legs[0]) for _ in range(5)] if legs else [{}] * 5
        else:
            target[key] = value
    return order


def _base_order(oid: int = 310001, ref: str = "FZ000001-C") -> dict[str, Any]:
    """A valid two-leg order record as the API sends it (reference §3)."""
    return {
        "id": oid, "account-number": "5WT00001", "status": "Live", "size": 2, "price": "1.25",
        "price-effect": "Credit", "order-type": "Limit", "time-in-force": "Day", "external-identifier": ref,
        "updated-at": 1767366000000, "received-at": "2026-01-02T15:00:00.000+00:00",
        "legs": [
            {"instrument-type": "Equity Option", "symbol": "SPXW  260116C05050000", "quantity": 2,
             "remaining-quantity": 1, "action": "Sell to Open",
             "fills": [{"fill-id": "3_OPT1", "quantity": "1", "fill-price": "2.50",
                        "filled-at": "2026-01-02T15:00:01.000+00:00"}]},
            {"instrument-type": "Equity Option", "symbol": "SPXW  260116C05075000", "quantity": "2.0",
             "remaining-quantity": "1", "action": "Buy to Open",
             "fills": [{"fill-id": "3_OPT2", "quantity": 1, "fill-price": 1.1}]},
        ],
    }


def _check_snapshot(snap: OrderSnapshot) -> None:
    """Every bound holds on an accepted record."""
    assert snap.order_id.isascii() and snap.order_id.isdigit() and snap.order_id[0] != "0"
    assert isinstance(snap.status, str) and 0 < len(snap.status) <= MAX_TEXT
    assert snap.size is None or (type(snap.size) is int and 0 <= snap.size <= MAX_QUANTITY)
    assert snap.price is None or (snap.price.is_finite() and abs(snap.price) <= MAX_PRICE)
    assert len(snap.legs) <= 4
    for leg in snap.legs:
        assert type(leg.quantity) is int and 0 <= leg.quantity <= MAX_QUANTITY
        assert leg.remaining is None or (type(leg.remaining) is int and 0 <= leg.remaining <= MAX_QUANTITY)
        assert len(leg.symbol) <= MAX_TEXT and len(leg.action) <= MAX_TEXT
        for f in leg.fills:
            assert type(f.quantity) is int and 0 <= f.quantity <= MAX_QUANTITY
            assert f.price.is_finite() and 0 <= f.price <= MAX_PRICE and f.price == f.price.quantize(Decimal("1E-6"))
            assert 0 < len(f.fill_id) <= MAX_TEXT
    for text in (snap.external_identifier, snap.reject_reason, snap.order_type, snap.live_at):
        assert text is None or len(text) <= MAX_TEXT


def _parse_bounded(obj: Any) -> OrderSnapshot | MalformedResponseError:
    start = time.process_time()
    try:
        result: OrderSnapshot | MalformedResponseError = parse_order(obj)
    except MalformedResponseError as err:
        result = err
    assert time.process_time() - start < 0.25, "a record is read in bounded time"
    peek_identity(obj)  # never raises
    return result


# -- the parser ---------------------------------------------------------------------------------------


@settings(max_examples=PARSER_EXAMPLES, deadline=None)
@given(bad=st.lists(INVALID_EDITS, min_size=1, max_size=3), harmless=st.lists(HARMLESS_EDITS, max_size=3),
       leg_at=st.integers(0, 1))
def test_an_invalid_record_is_refused_naming_the_field(bad: list[Edit], harmless: list[Edit], leg_at: int) -> None:
    STATS["tastytrade fuzz parser examples"] += 1
    record = _apply(_base_order(), [*harmless, *bad], leg_at)
    result = _parse_bounded(record)
    assert isinstance(result, MalformedResponseError), f"accepted an invalid record: {bad}"
    text = str(result)
    assert len(text) < 1000
    named = [key for _level, key, _v in bad]
    assert any(key in text for key in named) or "is not" in text or "legs" in text, (named, text)
    STATS["tastytrade fuzz parser refusals"] += 1


@settings(max_examples=PARSER_EXAMPLES, deadline=None)
@given(harmless=st.lists(HARMLESS_EDITS, max_size=4), leg_at=st.integers(0, 1))
def test_a_valid_record_with_extra_or_odd_informational_fields_is_accepted_whole(harmless: list[Edit],
                                                                                 leg_at: int) -> None:
    STATS["tastytrade fuzz parser examples"] += 1
    snap = _parse_bounded(_apply(_base_order(), harmless, leg_at))
    assert isinstance(snap, OrderSnapshot), snap
    _check_snapshot(snap)
    assert [f.price for leg in snap.legs for f in leg.fills] == [Decimal("2.50"), Decimal("1.1")]


@settings(max_examples=PARSER_EXAMPLES, deadline=None)
@given(obj=st.one_of(JSON, st.builds(lambda k, v: {**_base_order(), k: v},
                                     st.sampled_from(sorted(_base_order())), JSON)))
def test_any_json_is_a_snapshot_within_bounds_or_refused(obj: Any) -> None:
    STATS["tastytrade fuzz parser examples"] += 1
    result = _parse_bounded(obj)
    if isinstance(result, OrderSnapshot):
        _check_snapshot(result)


@settings(max_examples=PARSER_EXAMPLES, deadline=None)
@given(value=st.one_of(JSON, st.sampled_from(_ABSURD_NUMBERS), st.decimals(allow_nan=True, allow_infinity=True),
                       st.text(alphabet=st.characters(whitelist_categories=("Nd",)), max_size=20)))
def test_numbers_and_ids_are_bounded_or_refused_by_name(value: Any) -> None:
    STATS["tastytrade fuzz parser examples"] += 1
    start = time.process_time()
    for call, check in (
        (lambda: parse_quantity(value, "q"), lambda got: type(got) is int and 0 <= got <= MAX_QUANTITY),
        (lambda: parse_price(value, "p"), lambda got: got.is_finite() and 0 <= got <= MAX_PRICE),
        (lambda: parse_order_id(value, "i"), lambda got: got.isascii() and got.isdigit()),
    ):
        try:
            got = call()
        except ValueError as err:
            assert str(err)[:2] in ("q=", "p=", "i="), err
        else:
            assert check(got), got
    assert time.process_time() - start < 0.25
    # parsing and the client agree on what an id is (and on its text)
    try:
        ours: str | None = parse_order_id(value)
    except ValueError:
        ours = None
    try:
        path: str | None = _order_id(value)
    except ValueError:
        path = None
    assert ours == path


# -- over HTTP, through the executor ----------------------------------------------------------------

_CONTRACT = (BrokerError, QuoteUnavailable)


class ContractCheck(ExecutionBackend):
    """The real backend, with every call checked: only the contract's exceptions may leave."""

    name = "tastytrade"

    def __init__(self, inner: ExecutionBackend) -> None:
        self.inner = inner
        self.escaped: list[str] = []
        self.events: list[BrokerEvent] = []

    @property
    def clock(self) -> Clock:
        return self.inner.clock

    def _call(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _CONTRACT:
            raise
        except Exception as err:
            self.escaped.append(f"{name}: {type(err).__name__}: {err}")
            raise

    def submit(self, request: OrderRequest) -> None:
        self._call("submit", lambda: self.inner.submit(request))

    def cancel(self, order_ref: str) -> None:
        self._call("cancel", lambda: self.inner.cancel(order_ref))

    def replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        self._call("replace", lambda: self.inner.replace(order_ref, limit_price, quantity))

    def poll_events(self) -> list[BrokerEvent]:
        out: list[BrokerEvent] = self._call("poll_events", self.inner.poll_events)
        self.events.extend(out)
        return out

    def reconcile(self, order_refs: Sequence[str]) -> Mapping[str, OrderReport]:
        out: Mapping[str, OrderReport] = self._call("reconcile", lambda: self.inner.reconcile(order_refs))
        return out

    def quote(self, symbol: OptionSymbol) -> Quote:
        out: Quote = self._call("quote", lambda: self.inner.quote(symbol))
        return out

    def positions(self) -> Mapping[OptionSymbol, int]:
        out: Mapping[OptionSymbol, int] = self._call("positions", self.inner.positions)
        return out

    def find_orders(self, prefix: str) -> Mapping[str, OrderReport]:
        out: Mapping[str, OrderReport] = self._call("find_orders", lambda: self.inner.find_orders(prefix))
        return out


FOREIGN: st.SearchStrategy[Any] = st.one_of(
    JSON.filter(lambda v: not (isinstance(v, dict) and ("id" in v or "replaces-order-id" in v))),
    st.builds(lambda q, oid, ext: {"id": oid, "status": "Live", "order-type": "Notional Market",
                                   "external-identifier": ext,
                                   "legs": [{"instrument-type": "Equity", "symbol": "AAPL", "quantity": q,
                                             "remaining-quantity": q, "action": "Buy", "fills": []}]},
              st.one_of(BAD_QUANTITY, st.just(3)), st.one_of(st.integers(900_000, 999_999), BAD_ID),
              st.one_of(st.none(), st.just("other-app-1"), BAD_TEXT)),
)
PAGE_CLAIMS = st.sampled_from([None, 10**6, "1000000", -1, "1e999", 10**30, [2], 3, float("inf")])


@settings(max_examples=HTTP_EXAMPLES, deadline=None)
@given(mode=st.sampled_from([ExecutionMode.COMBO, ExecutionMode.LEGGED]),
       bad=st.lists(INVALID_EDITS, min_size=1, max_size=2), harmless=st.lists(HARMLESS_EDITS, max_size=2),
       leg_at=st.integers(0, 3), whole=st.one_of(st.none(), st.none(), st.sampled_from([[], "order", 7, None])),
       foreign=st.lists(FOREIGN, max_size=3), claim=st.one_of(st.none(), PAGE_CLAIMS),
       ticks=st.integers(1, 6), seed=st.sampled_from([3, 5, 11]))
def test_hostile_answers_over_http_never_stop_the_executor(mode: ExecutionMode, bad: list[Edit],
                                                           harmless: list[Edit], leg_at: int, whole: Any,
                                                           foreign: list[Any], claim: Any, ticks: int,
                                                           seed: int) -> None:
    STATS["tastytrade fuzz http examples"] += 1
    h = Harness(seed=seed)
    crashes = _Crashes()
    logging.getLogger("atomic_orders").addHandler(crashes)
    try:
        backend = ContractCheck(h.backend)
        ex = AtomicOrderExecutor(backend, ExecutionPolicy(), session_id="")
        edits = [*harmless, *bad]
        h.emulator.tamper_orders("^FZ", lambda order: _apply(order, edits, leg_at, whole))
        for record in foreign:
            h.emulator.serve_foreign(record)
        if claim is not None:
            h.emulator.claim_pages(claim)
        group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2, mode=mode, group_id="FZ000001")
        # an honest group beside it: one bad record never fails a poll, so it is seen at once
        honest = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=1, mode=ExecutionMode.COMBO,
                                        group_id="OK000001")
        refs: set[str] = set()
        for _ in range(ticks):
            before = h.emulator.request_count("GET /orders/live")
            h.advance(1.0)
            ex.process_events()
            ex.on_timer()
            assert h.emulator.request_count("GET /orders/live") - before <= 2 * h.config.max_live_pages
            assert h.backend.monitor.last_error is None, "no poll failed as a whole"
            refs.update(t.order_ref for t in group.tickets)
        assert all(t.broker_order_id is not None for t in honest.tickets), "the honest group was seen at once"
        heard = {be.event.trigger for be in backend.events if be.order_ref.startswith("FZ")}
        # nothing read from a bad record: its ticket hears only that its outcome is unknown (or
        # refusals of our own requests, derived from what we sent)
        assert heard <= {"submission_unknown", "cancel_rejected", "update_rejected"}, heard
        h.emulator.stop_tampering()
        h.settle(ex)
        refs.update(t.order_ref for g in (group, honest) for t in g.tickets)
        assert backend.escaped == [], backend.escaped
        # the core's last line never caught an exception (it may count a reference reconcile left
        # out: an order with no readable record is not answered, by design)
        assert crashes.records == [], [r.getMessage() for r in crashes.records]
        for ref in refs:
            assert len(h.emulator.orders_with_external_id(ref)) <= 1, f"{ref} sent twice"
        booked: dict[OptionSymbol, int] = {}
        for g in (group, honest):
            assert g.state in TERMINAL_STATES
            held = {s: q for s, q in g.ledger.positions().items() if q}
            if g.state == "committed":
                assert held == {leg.symbol: leg.signed_ratio * g.quantity for leg in g.legs}
            elif g.state == "rolled_back":
                assert held == {}
            for s, q in held.items():
                booked[s] = booked.get(s, 0) + q
            assert invariants.check_group(g) == []
            STATS[f"tastytrade fuzz http settled {g.state}"] += 1
        # every fill the broker made was booked (the later, readable records included)
        assert {s: q for s, q in booked.items() if q} == {s: q for s, q in h.sim.positions().items() if q}
        STATS["tastytrade fuzz http boundary errors caught"] += h.backend.boundary_errors
    finally:
        logging.getLogger("atomic_orders").removeHandler(crashes)
        h.close()


class _Crashes(logging.Handler):
    """Log records that carry an exception (``log.exception``: a last line caught something)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

