"""Session reports a trader can open: the HTML page and the per-group CSV of a chaos session.

:mod:`.log` reads a session's event log (``atomic-orders simulate --events``) back into records,
refusing a bad line by its number; :mod:`.html` draws one self-contained, offline HTML page from
it (plotly, its JavaScript inlined); :mod:`.table` writes one CSV row per group; :mod:`.files` writes a report
file whole or not at all.

May import: :mod:`atomic_orders.fsm` and :mod:`atomic_orders.simulator.session` (the log's record
types); plotly, loaded only when a page is drawn.
"""
