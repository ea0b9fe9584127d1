"""The pytest plugin shipped with the package, tested by running pytest inside pytest (``pytester``).

The inner runs load the plugin the way a user's project does: through the ``pytest11`` entry
point of the installed package (nothing in the inner directory names it).
"""

from __future__ import annotations

import re
import shlex
import socket
import urllib.parse
from pathlib import Path

import pytest

from atomic_orders.simulator.proofs import pytest_plugin
from atomic_orders.simulator.proofs.exhaustive import World, parse_script

REPO = Path(__file__).resolve().parents[2]
#: The example test users copy: package data (pyproject.toml), next to the plugin it exercises.
EXAMPLE = REPO / "simulator" / "proofs" / "examples" / "test_my_strategy.py"

_FAILING_SESSION = """
import pytest

def test_session(atomic_session, broker_simulator):
    short_call, long_call, short_put, long_put = atomic_session.condor_strikes()
    atomic_session.executor.execute_iron_condor(short_call=short_call, long_call=long_call, short_put=short_put,
                                                long_put=long_put, quantity=1)
    atomic_session.settle()
    assert atomic_session.violations() == []
    assert False, "the strategy's own check failed"
"""


def _section(output: str) -> str:
    """The text of the "atomic-orders: reproduce" section of an inner run's output."""
    m = re.search(r"-+ atomic-orders: reproduce -+\n(.*?)(?:\n[=_-]{5,}|\Z)", output, re.DOTALL)
    assert m, output
    return m.group(1)


def _event_log(section: str) -> list[str]:
    lines = section.split("broker event log", 1)[1].splitlines()[1:]
    return [line.strip() for line in lines if line.strip().startswith("{")]


def test_the_plugin_is_loaded_through_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_plugin(request):
            assert request.config.pluginmanager.has_plugin("atomic_orders")
        """
    )
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.chaos_profile(profile)*", "@pytest.mark.chaos_seed(seed)*",
                                 "@pytest.mark.atomic_backend(name)*"])
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_example_test_in_the_docs_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_my_strategy=EXAMPLE.read_text(encoding="utf-8"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_fixtures_take_seed_and_profile_from_options_then_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from atomic_orders.simulator.broker.chaos import ChaosProfile

        def test_options(broker_simulator, chaos_seed, chaos_profile):
            assert (broker_simulator.seed, broker_simulator.profile) == (chaos_seed, chaos_profile)
            assert (chaos_seed, chaos_profile.name) == (31, "calm")

        @pytest.mark.chaos_profile("hostile")
        @pytest.mark.chaos_seed(5)
        def test_markers_win(broker_simulator):
            assert (broker_simulator.seed, broker_simulator.profile) == (5, ChaosProfile.hostile())

        @pytest.mark.chaos_profile(ChaosProfile(name="mine", reject_rate=1.0))
        def test_custom_profile(chaos_profile):
            assert chaos_profile.reject_rate == 1.0
        """
    )
    result = pytester.runpytest("--chaos-seed", "31", "--chaos-profile", "calm")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["atomic-orders: chaos profile calm, seed 31"])


def test_defaults_and_bad_values(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        def test_defaults(broker_simulator, atomic_backend):
            assert broker_simulator.seed == {pytest_plugin.DEFAULT_SEED}
            assert broker_simulator.profile.name == "{pytest_plugin.DEFAULT_PROFILE}"
            assert atomic_backend == "simulated"

        @pytest.mark.chaos_profile("stormy")
        def test_unknown_profile(broker_simulator):
            pass

        @pytest.mark.atomic_backend("ibkr")
        def test_unknown_backend(atomic_executor):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*chaos profile 'stormy' is not a preset*", "*atomic_backend='ibkr'*"])
    assert "atomic-orders: chaos profile" not in result.stdout.str()  # no header without options
    bad = pytester.runpytest("--chaos-profile", "stormy")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--chaos-profile*invalid choice*stormy*"])


def test_emulator_fixture_serves_real_http_on_loopback_and_stops(pytester: pytest.Pytester) -> None:
    url_file = pytester.path / "url.txt"
    pytester.makepyfile(
        f"""
        def test_emulator(tastytrade_emulator):
            assert tastytrade_emulator.base_url.startswith("http://127.0.0.1:")
            client = tastytrade_emulator.client()
            accounts = client.accounts()
            assert [a["account"]["account-number"] for a in accounts] == [tastytrade_emulator.account_number]
            assert "emulator" not in repr(tastytrade_emulator.credentials)  # the secrets stay masked
            open({str(url_file)!r}, "w").write(tastytrade_emulator.base_url)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    parts = urllib.parse.urlsplit(url_file.read_text())
    assert parts.hostname == "127.0.0.1" and parts.port
    with pytest.raises(OSError), socket.create_connection((parts.hostname, parts.port), timeout=1):
        pass  # torn down: nothing listens any more


def test_a_failure_through_the_emulator_never_prints_its_credentials(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.atomic_backend("tastytrade-emulator")
        def test_fails(atomic_session, tastytrade_emulator):
            credentials = tastytrade_emulator.credentials
            client = tastytrade_emulator.client()
            atomic_session.executor.execute_iron_condor(**atomic_session.condor_roles(), quantity=1)
            atomic_session.settle()
            assert (client, credentials, tastytrade_emulator) is None
        """
    )
    # locals shown, every log line captured and reported: still no secret
    result = pytester.runpytest("-l", "--log-level=DEBUG", "-rA", "--chaos-profile", "hostile")
    result.assert_outcomes(failed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "atomic-orders: reproduce" in output and "OAuthCredentials(" in output
    for secret in ("emulator-client-secret", "emulator-refresh-token", "Bearer"):
        assert secret not in output


def test_executor_runs_through_either_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from atomic_orders.simulator.broker.backend import SimulatedBackend
        from atomic_orders.backends.tastytrade import TastytradeBackend
        from atomic_orders.simulator.proofs.testing import BACKENDS

        @pytest.mark.parametrize("atomic_backend", BACKENDS)
        def test_condor(atomic_session, atomic_executor, atomic_backend):
            assert atomic_executor is atomic_session.executor
            expected = SimulatedBackend if atomic_backend == "simulated" else TastytradeBackend
            assert isinstance(atomic_executor.backend, expected)
            group = atomic_executor.execute_iron_condor(**atomic_session.condor_roles(), quantity=2)
            atomic_session.settle()
            assert group.state in ("committed", "rolled_back")
            assert atomic_session.violations() == []

        @pytest.mark.atomic_backend("tastytrade-emulator")
        def test_marker(atomic_session, tastytrade_emulator):
            assert atomic_session.emulator is tastytrade_emulator
            assert atomic_session.backend_name == "tastytrade-emulator"

        @pytest.mark.parametrize("atomic_executor", BACKENDS, indirect=True)
        def test_indirect(atomic_executor, atomic_session):
            assert atomic_executor is atomic_session.executor
            assert atomic_session.backend_name in BACKENDS
            assert (atomic_session.emulator is None) == (atomic_session.backend_name == "simulated")
        """
    )
    result = pytester.runpytest("--chaos-profile", "calm", "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*test_indirect?simulated? PASSED*", "*test_indirect?tastytrade-emulator? PASSED*"])


def test_violations_name_exposure_no_group_accounts_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from decimal import Decimal
        from atomic_orders.fsm.leg import Leg, Side
        from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce

        def test_stray_order(atomic_session):
            symbol = atomic_session.condor_strikes()[0]
            # an order sent around the executor: the broker fills it, no group owns it
            atomic_session.broker.submit(OrderRequest("X-1", "X", Purpose.ENTRY, (Leg(symbol, Side.BUY),), 1,
                                                      OrderType.MARKET, None, TimeInForce.DAY))
            atomic_session.advance(30)
            found = atomic_session.violations()
            assert f"broker holds +1 {symbol.occ} that no group accounts for" in found
            assert any("arrived for no open group" in v for v in found)  # the executor's own log
        """
    )
    pytester.runpytest("--chaos-profile", "none").assert_outcomes(passed=1)


def test_a_failing_test_prints_seed_rerun_command_and_event_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fail=_FAILING_SESSION)
    first = pytester.runpytest("--chaos-seed", "11", "--chaos-profile", "calm")
    first.assert_outcomes(failed=1)
    section = _section(first.stdout.str())
    assert "seed: 11   chaos profile: calm   backend: simulated" in section
    assert "re-run: pytest 'test_fail.py::test_session' --chaos-seed=11 --chaos-profile=calm" in section
    log = _event_log(section)
    assert log and any('"kind":"acknowledged"' in line for line in log)
    assert re.search(r"broker event log \((\d+) events", section)

    # The printed seed reproduces the run: the same seed gives the same events, another seed does not.
    again = _event_log(_section(pytester.runpytest("--chaos-seed", "11", "--chaos-profile", "calm").stdout.str()))
    other = _event_log(_section(pytester.runpytest("--chaos-seed", "12", "--chaos-profile", "calm").stdout.str()))
    assert again == log
    assert other != log


def test_the_printed_rerun_command_reproduces_the_failure_as_a_shell_would_run_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ids="""
        import pytest

        @pytest.mark.parametrize("label", ["it's [a] test"])
        def test_session(atomic_session, label):
            atomic_session.executor.execute_iron_condor(**atomic_session.condor_roles(), quantity=1)
            atomic_session.settle()
            assert label == "other"

        def test_other(broker_simulator):
            assert False
        """
    )
    first = pytester.runpytest("--chaos-seed", "0", "--chaos-profile", "hostile")
    first.assert_outcomes(failed=2)
    section = _section(first.stdout.str())
    command = section.split("re-run: ", 1)[1].splitlines()[0]
    argv = shlex.split(command)  # what a POSIX shell hands pytest
    assert argv[0] == "pytest" and argv[2:] == ["--chaos-seed=0", "--chaos-profile=hostile"]
    assert argv[1] == "test_ids.py::test_session[it's [a] test]"

    again = pytester.runpytest(*argv[1:])
    again.assert_outcomes(failed=1)  # that test only, with the same broker
    assert _event_log(_section(again.stdout.str())) == _event_log(section)


def test_a_failing_property_prints_the_broker_script_that_reproduces_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_prop="""
        from hypothesis import given, settings
        from atomic_orders.simulator.proofs.testing import World, broker_scripts, prove

        @settings(max_examples=300, derandomize=True, database=None, deadline=None)
        @given(broker_scripts(max_size=12))
        def test_vertical_always_commits(script):
            world = World()
            assert prove(world, script) == []
            assert world.group.state == "committed"  # wrong on purpose: a broker can reject
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    section = _section(result.stdout.str())
    assert "seed:" not in section  # no seeded broker in this test: the script is the reproduction
    script_line = section.split("broker script", 1)[1].splitlines()[1].strip()
    script = parse_script(script_line)

    world = World()  # the same default group as the inner test
    world.run(script)
    world.settle()
    assert world.check_final() == []
    assert world.group.state != "committed"  # the printed script reproduces the failure


def test_passing_and_unrelated_tests_get_no_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_unrelated():
            assert 1 == 2

        def test_passing(broker_simulator):
            assert broker_simulator.seed == 7
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, passed=1)
    assert "atomic-orders: reproduce" not in result.stdout.str()


def test_session_settles_a_legged_condor_on_the_hostile_preset(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from atomic_orders.fsm import ExecutionMode

        @pytest.mark.chaos_profile("hostile")
        @pytest.mark.chaos_seed(3)
        def test_legged(atomic_session):
            ex = atomic_session.executor
            for _ in range(3):
                ex.execute_iron_condor(**atomic_session.condor_roles(), quantity=3, mode=ExecutionMode.LEGGED)
                atomic_session.advance(45)
            atomic_session.settle()
            assert not ex.open_groups()
            assert atomic_session.violations() == []
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_settle_stops_at_its_limit_and_reports_the_open_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import attrs
        import pytest
        from atomic_orders.simulator.broker.chaos import ChaosProfile

        @pytest.mark.chaos_profile(attrs.evolve(ChaosProfile(), limit_fill_rate=0.0))
        def test_limit(atomic_session):
            group = atomic_session.executor.execute_iron_condor(**atomic_session.condor_roles(), quantity=1)
            start = atomic_session.broker.clock.seconds
            atomic_session.settle(limit_seconds=7.0)  # the executor wakes at 5 s and 10 s
            assert atomic_session.broker.clock.seconds - start <= 7.0
            assert group.state == "executing"  # resting, unfilled, its 90 s deadline not reached
            assert atomic_session.violations() == [f"{group.group_id}: not terminal (executing)"]
            atomic_session.settle()  # no limit to speak of: the deadline rolls it back
            assert group.state == "rolled_back"
            assert atomic_session.violations() == []
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
