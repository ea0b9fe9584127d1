"""Recovery hands the journaled orders back to the TastyTrade backend (``adopt_orders``).

A combo's fill ids count cumulative units (``<order id>-u<units>``), so a new process that did
not know which units the old one already reported would report them again under a new id: a
partial fill journaled before the crash plus more units filled while down would count twice.
No HTTP here: the adopted tracker is fed the broker's order JSON the monitor would read.
"""

from __future__ import annotations

from decimal import Decimal

from atomic_orders.backends.tastytrade.auth import OAuthCredentials
from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.parsing import parse_order
from atomic_orders.fsm.events import Fill
from atomic_orders.fsm.orders import OrderRequest, Purpose
from tests.tastytrade.test_payloads_parsing import CONDOR, NOW, combo, order_json


def _backend() -> TastytradeBackend:
    config = TastytradeConfig(account_number="5WT00001", base_url="http://127.0.0.1:9")  # never contacted
    return TastytradeBackend(TastytradeApiClient(config, OAuthCredentials("not-a-secret", "not-a-token")))


def test_an_adopted_combo_reports_only_the_units_filled_while_down() -> None:
    backend = _backend()
    journaled = Fill(time=NOW, fill_id="100-u1", quantity=1, price=Decimal("-1.25"))
    backend.adopt_orders([(combo(), NOW, (journaled,))])
    tracker = backend.monitor.trackers["G1-C"]
    # The broker now shows 3 of 3 units filled (1 before the crash, 2 while the process was down).
    tracker.add(parse_order(order_json("Filled", [[(1, "1.00"), (2, "1.10")], [(1, "0.50"), (2, "0.50")],
                                                  [(1, "1.20"), (2, "1.20")], [(1, "0.45"), (2, "0.45")]])))
    fills = [e for e in tracker.events(NOW) if isinstance(e, Fill)]
    assert [(f.fill_id, f.quantity) for f in fills] == [("100-u3", 2)]  # not ("100-u3", 3): no double count
    report = tracker.report(NOW)
    assert sum(f.quantity for f in report.fills) == 3
    assert {f.fill_id for f in report.fills} == {"100-u1", "100-u3"}


def test_an_adopted_single_leg_order_does_not_report_a_journaled_fill_again() -> None:
    backend = _backend()
    request = OrderRequest("G1-L0", "G1", Purpose.ENTRY, (CONDOR[1],), 3, limit_price=Decimal("0.50"))
    backend.adopt_orders([(request, NOW, (Fill(time=NOW, fill_id="100-0-0", quantity=1, price=Decimal("0.50")),))])
    tracker = backend.monitor.trackers["G1-L0"]
    tracker.add(parse_order(order_json("Live", [[(1, "0.50"), (2, "0.55")]], legs=(CONDOR[1],))))
    fills = [e for e in tracker.events(NOW) if isinstance(e, Fill)]
    assert [(f.fill_id, f.quantity) for f in fills] == [("100-0-1", 2)]
    backend.adopt_orders([(request, NOW, ())])  # adopting twice keeps the first tracker and what it knows
    assert backend.monitor.trackers["G1-L0"] is tracker
