"""Enable pytest's own ``pytester`` plugin for the plugin tests (they run pytest inside pytest).

``pytest_plugins = ["pytester"]`` is only allowed in a top-level conftest, so the plugin is
imported when this conftest is configured instead.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Load ``pytester`` (its fixtures and options) if nothing loaded it yet."""
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
