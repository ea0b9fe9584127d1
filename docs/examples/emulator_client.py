"""Point a TastyTrade client at the local emulator (``atomic-orders emulate``) and read the account.

Usage: ``python docs/examples/emulator_client.py [BASE_URL]`` (default ``http://127.0.0.1:8765``).

The same code talks to the real API: only the base URL and the credentials change (see
docs/tastytrade.md). The emulator accepts the test credentials it prints when it starts.
"""

from __future__ import annotations

import sys

from atomic_orders.backends.tastytrade import OAuthCredentials, TastytradeApiClient, TastytradeConfig


def main(base_url: str = "http://127.0.0.1:8765") -> int:
    """Authenticate, list the accounts, then the live orders and positions of the first one."""
    credentials = OAuthCredentials(client_secret="emulator-client-secret", refresh_token="emulator-refresh-token")
    probe = TastytradeConfig(account_number="ANY", base_url=base_url)
    with TastytradeApiClient(probe, credentials) as client:
        accounts = [item["account"]["account-number"] for item in client.accounts()]
    print(f"accounts: {accounts}")
    config = TastytradeConfig(account_number=accounts[0], base_url=base_url)
    with TastytradeApiClient(config, credentials) as client:
        print(f"live orders: {len(client.live_orders())}")
        print(f"positions: {len(client.positions())}")
        print(f"requests sent: {client.requests_sent} (token refreshes: {client.tokens.refreshes})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:2]))
