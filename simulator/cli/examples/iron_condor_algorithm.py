"""A complete LEAN algorithm: sell a weekly SPXW iron condor, atomically, through the adapter.

Every Monday 30 minutes after the open it sells one iron condor (short strikes about 40 points
from SPX, 10-point wings, expiring that Friday) through :class:`TastytradeIntegrationAdapter`:
in a backtest the orders go through LEAN's own order API (one combo limit order, priced by the
executor from the mid toward the natural price), live with TastyTrade credentials they go to
TastyTrade directly. Either way every leg fills or everything is undone, and each group's outcome
is logged. The algorithm never calls an order method itself.

Inside LEAN, put the ``atomic-orders`` package on the algorithm's path (``atomic-orders lean-bundle``
writes this file as a project's ``main.py`` with the package files it imports). Outside LEAN the same
class runs on the stand-in in :mod:`atomic_orders.simulator.lean` (``atomic-orders lean-run``;
``tests/quantconnect/test_example.py``). It ships with the package as data, not a module:
``importlib.resources.files("atomic_orders.simulator.cli") / "examples" / "iron_condor_algorithm.py"``.

Live: set ``TASTYTRADE_ACCOUNT``, ``TASTYTRADE_CLIENT_SECRET`` and ``TASTYTRADE_REFRESH_TOKEN``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import TYPE_CHECKING

from atomic_orders.backends.quantconnect import TastytradeIntegrationAdapter
from atomic_orders.backends.tastytrade.auth import OAuthCredentials
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.fsm.executor import GroupSummary
from atomic_orders.fsm.group import AtomicOrderGroup

if TYPE_CHECKING:
    from AlgorithmImports import (
        BrokerageName,
        Market,
        OptionRight,
        OptionStyle,
        OrderEvent,
        QCAlgorithm,
        Symbol,
    )
else:
    try:  # inside LEAN
        from AlgorithmImports import BrokerageName, Market, OptionRight, OptionStyle, OrderEvent, QCAlgorithm, Symbol
    except ImportError:  # outside LEAN: the stand-in
        from atomic_orders.simulator.lean.algorithm import QCAlgorithm
        from atomic_orders.simulator.lean.lean_types import (
            BrokerageName,
            Market,
            OptionRight,
            OptionStyle,
            OrderEvent,
            Symbol,
        )

#: Points between SPX and each short strike, and the width of each wing.
SHORT_DISTANCE = 40.0
WING_WIDTH = 10.0
STRIKE_STEP = 5.0
CONTRACTS = 1


class WeeklyIronCondorAlgorithm(QCAlgorithm):
    """Sells one SPXW iron condor a week through the atomic executor."""

    def initialize(self) -> None:
        """Subscribe SPX, create the adapter once, schedule the entry and the executor's poll."""
        self.set_start_date(2026, 1, 5)
        self.set_end_date(2026, 3, 27)
        self.set_cash(100_000)
        self.set_brokerage_model(BrokerageName.TASTYTRADE)
        self.spx = self.add_index("SPX").symbol
        tastytrade: TastytradeConfig | None = None
        credentials: OAuthCredentials | None = None
        if self.live_mode and os.environ.get("TASTYTRADE_ACCOUNT"):
            tastytrade = TastytradeConfig(account_number=os.environ["TASTYTRADE_ACCOUNT"])
            credentials = OAuthCredentials.from_env()
        self.adapter = TastytradeIntegrationAdapter(self, tastytrade=tastytrade, credentials=credentials,
                                                    on_finished=self.on_group_finished, log_outcomes=False)
        self.schedule.on(self.date_rules.week_start(self.spx), self.time_rules.after_market_open(self.spx, 30),
                         self.sell_condor)
        self.schedule.on(self.date_rules.every_day(self.spx), self.time_rules.every(dt.timedelta(seconds=5)),
                         self.adapter.poll)
        self.schedule.on(self.date_rules.every_day(self.spx), self.time_rules.before_market_close(self.spx, 5),
                         self.end_of_day)

    def sell_condor(self) -> None:
        """Sell this week's condor (one group at a time)."""
        if self.adapter.open_groups():
            self.log("a condor is still executing; no new one this week")
            return
        spot = float(self.securities[self.spx].price)
        today = self.time.date()
        expiry = today + dt.timedelta(days=(4 - today.weekday()) % 7)  # this week's Friday
        short_call = math.ceil((spot + SHORT_DISTANCE) / STRIKE_STEP) * STRIKE_STEP
        short_put = math.floor((spot - SHORT_DISTANCE) / STRIKE_STEP) * STRIKE_STEP
        group = self.adapter.execute_iron_condor(
            short_call=self.contract(OptionRight.CALL, short_call, expiry),
            long_call=self.contract(OptionRight.CALL, short_call + WING_WIDTH, expiry),
            short_put=self.contract(OptionRight.PUT, short_put, expiry),
            long_put=self.contract(OptionRight.PUT, short_put - WING_WIDTH, expiry),
            quantity=CONTRACTS,
        )
        self.log(f"condor {group.group_id}: SPX {spot:.2f}, shorts {short_put:g}P/{short_call:g}C "
                 f"wings {WING_WIDTH:g}, expiry {expiry}, {group.state}")

    def end_of_day(self) -> None:
        """Log the day's end: SPX, the option positions held (contracts) and the groups still executing."""
        held = {symbol.occ: quantity for symbol, quantity in self.adapter.positions().items() if quantity}
        contracts = sum(abs(q) for q in held.values())
        self.log(f"end of day: SPX {float(self.securities[self.spx].price):.2f}, {len(held)} option positions "
                 f"({contracts} contracts), {len(self.adapter.open_groups())} groups executing")

    def contract(self, right: OptionRight, strike: float, expiry: dt.date) -> Symbol:
        """The SPXW contract (an index option on SPX)."""
        when = dt.datetime(expiry.year, expiry.month, expiry.day)
        return Symbol.create_option(self.spx, "SPXW", Market.USA, OptionStyle.EUROPEAN, right, strike, when)

    def on_group_finished(self, group: AtomicOrderGroup, summary: GroupSummary) -> None:
        """Log each group's outcome: committed, rolled back, or failed with its residual."""
        line = f"condor {group.group_id} {summary.state}"
        if summary.rollback_reason:
            line += f" ({summary.rollback_reason})"
        if summary.state == "failed":
            line += f"; residual exposure {summary.residual_exposure}"
        self.log(line)

    def on_order_event(self, order_event: OrderEvent) -> None:
        """Every LEAN order event goes to the adapter (it may arrive inside an order call)."""
        self.adapter.on_order_event(order_event)
