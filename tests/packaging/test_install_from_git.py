"""The install line of the README's "Install" section, from git: ``atomic-orders[testing] @ git+<url>``.

The repository is cloned (its committed state, as a user would get it) and installed from a
``git+file://`` URL, the same form as ``git+https://`` (pip clones either way). Offline: no
index, no build isolation (the project's virtualenv supplies setuptools).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .conftest import REPO, clean_env, pip


def test_install_from_a_git_url(tmp_path: Path) -> None:
    clone = tmp_path / "atomic-orders"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120, env=clean_env())
    # The README's local form: the pip bundled with Python 3.11 (23.2) refuses "git+file:///path".
    url = f"git+file://localhost{clone.resolve()}"
    target = tmp_path / "site"
    pip("install", "--no-deps", "--no-build-isolation", "--no-index", "-q", "--target", str(target),
        f"atomic-orders @ {url}")
    tops = {p.name for p in target.iterdir()} - {"bin"}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"atomic_orders"}, sorted(tops)
    assert (target / "atomic_orders" / "simulator" / "proofs" / "pytest_plugin.py").is_file()
    assert (target / "atomic_orders" / "simulator" / "proofs" / "examples" / "test_my_strategy.py").is_file()

    # The extra resolves: pip plans the install with pytest and Hypothesis (already in this
    # virtualenv, so no index is needed) and installs nothing.
    report = tmp_path / "report.json"
    pip("install", "--dry-run", "--no-build-isolation", "--no-index", "-q", "--report", str(report),
        f"atomic-orders[testing] @ {url}")
    planned = json.loads(report.read_text(encoding="utf-8"))["install"]
    (ours,) = [item for item in planned if item["metadata"]["name"] == "atomic-orders"]
    assert ours["requested_extras"] == ["testing"]
    assert ours["download_info"]["url"].startswith("file://")
    requires = [r for r in ours["metadata"]["requires_dist"] if 'extra == "testing"' in r]
    assert sorted(r.split(">")[0] for r in requires) == ["hypothesis", "pytest"], requires
