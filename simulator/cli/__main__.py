"""``python -m atomic_orders.simulator.cli``: the same as the ``atomic-orders`` command."""

from atomic_orders.simulator.cli.main import main

raise SystemExit(main())
