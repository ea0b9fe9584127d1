"""Ledger: the signed net position per symbol that a group's fills have produced."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from atomic_orders.fsm.events import Fill
from atomic_orders.fsm.symbol import OptionSymbol

if TYPE_CHECKING:
    from atomic_orders.fsm.ticket import OrderTicket


@attrs.frozen
class LedgerEntry:
    """One fill's effect on one symbol: signed contracts (+ bought, - sold)."""

    time: dt.datetime
    order_ref: str
    fill_id: str
    symbol: OptionSymbol
    quantity: int
    #: The fill's price: the option's price for a single leg, the net per unit for a combo.
    price: Decimal
    purpose: str


def signed_contracts(ticket: OrderTicket) -> list[tuple[OptionSymbol, int]]:
    """Signed contracts per unit filled on ``ticket``, per symbol.

    A combo fills in strategy units (each unit moves every leg by its signed ratio); a
    single-leg order fills in contracts of that leg.
    """
    if len(ticket.legs) == 1:
        leg = ticket.legs[0]
        return [(leg.symbol, leg.side.sign)]
    return [(leg.symbol, leg.signed_ratio) for leg in ticket.legs]


class Ledger:
    """Signed net contracts per symbol, built from every fill of every ticket of one group."""

    __slots__ = ("_net", "entries", "held")

    def __init__(self) -> None:
        self._net: dict[OptionSymbol, int] = {}
        self.entries: list[LedgerEntry] = []
        #: A live read-only view of the signed net contracts per symbol (zeros included): the
        #: machines' guards read it on every event, so it is made once, not copied per call.
        self.held: Mapping[OptionSymbol, int] = MappingProxyType(self._net)

    # A view cannot be pickled (the exhaustive checker and the sweeps copy groups): rebuild it.
    def __getstate__(self) -> tuple[dict[OptionSymbol, int], list[LedgerEntry]]:
        return self._net, self.entries

    def __setstate__(self, state: tuple[dict[OptionSymbol, int], list[LedgerEntry]]) -> None:
        self._net, self.entries = state
        self.held = MappingProxyType(self._net)

    def record(self, ticket: OrderTicket, fill: Fill) -> None:
        """Add one fill of ``ticket`` (every fill, including late fills and over-fills)."""
        net = self._net
        for symbol, per_unit in signed_contracts(ticket):
            qty = fill.quantity * per_unit
            net[symbol] = net.get(symbol, 0) + qty
            self.entries.append(
                LedgerEntry(fill.time, ticket.order_ref, fill.fill_id, symbol, qty, fill.price, ticket.purpose.value)
            )

    def net(self, symbol: OptionSymbol) -> int:
        """Signed net contracts held in ``symbol``."""
        return self._net.get(symbol, 0)

    def positions(self) -> dict[OptionSymbol, int]:
        """Every symbol with a non-zero net position."""
        return {s: q for s, q in self._net.items() if q}

    @property
    def is_flat(self) -> bool:
        """True when every net position is zero."""
        return not any(self._net.values())

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def ledger_from_tickets(tickets: Mapping[str, OrderTicket] | list[OrderTicket]) -> dict[OptionSymbol, int]:
    """Recompute net positions from tickets' own fill lists (an independent check of a ledger)."""
    net: dict[OptionSymbol, int] = {}
    items = tickets.values() if isinstance(tickets, Mapping) else tickets
    for ticket in items:
        for symbol, per_unit in signed_contracts(ticket):
            net[symbol] = net.get(symbol, 0) + per_unit * sum(f.quantity for f in ticket.fills)
    return {s: q for s, q in net.items() if q}
