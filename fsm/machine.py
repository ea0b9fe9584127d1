"""Machines declared as data, run by one shared ``transitions`` machine per kind.

A machine is a list of states and a table of :class:`Row` (trigger, sources, destination,
guards, effects). Guards and effects are named in the table and resolved from a registry of
small functions taking ``(model, event)``. The same table feeds three consumers:

* :func:`build_runtime_machine` - one static ``transitions.Machine`` per kind. Models are never
  registered (``add_model`` is O(n) and one Machine per object costs ~0.3 ms and 16 KB); an event
  is fired through the machine's own ``Event`` object, the "static machine" pattern of the
  ``transitions`` FAQ. ``auto_transitions=False``: only declared rows exist.
* the diagram renderer (:mod:`atomic_orders.fsm.diagrams`), which draws the rows;
* the property tests and invariants, which enumerate the legal ``(state, trigger)`` pairs.

``transitions`` never rolls a state back when a callback raises after the state changed, so
fallible work lives in ``before`` effects (run before the change) and ``after`` effects must be
infallible.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
from transitions import Machine
from transitions.core import Condition, Event, EventData, State, Transition

#: A guard: a pure predicate over the model and the event being applied.
Guard = Callable[[Any, Any], bool]
#: An effect: a side effect on the model, given the event being applied.
Effect = Callable[[Any, Any], None]


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen
class Row:
    """One row of a transition table.

    ``dest`` of ``None`` is an internal transition: effects run, the state does not change.
    Rows for the same ``(source, trigger)`` are tried in table order; the first whose guards hold
    wins, so a final unguarded row means "otherwise".
    """

    trigger: str
    source: tuple[str, ...] = attrs.field(converter=_as_tuple)
    dest: str | None
    conditions: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)
    unless: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)
    before: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)
    after: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)
    note: str = ""

    @property
    def guard_text(self) -> str:
        """The guards as a reviewer reads them: ``a and b and not c``, or empty."""
        parts = list(self.conditions) + [f"not {name}" for name in self.unless]
        return " and ".join(parts)


@attrs.frozen
class MachineSpec:
    """A whole machine as data: its states, terminal states, initial state and table."""

    name: str
    states: tuple[str, ...]
    initial: str
    terminal: frozenset[str]
    rows: tuple[Row, ...]
    #: Every ``(state, trigger)`` pair some row allows (derived from ``rows``).
    pairs: frozenset[tuple[str, str]] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        known = set(self.states)
        for row in self.rows:
            named = row.source + ((row.dest,) if row.dest is not None else ())
            for state in named:
                if state not in known:
                    raise ValueError(f"{self.name}: row {row!r} names unknown state {state!r}")
        object.__setattr__(self, "pairs", frozenset((src, row.trigger) for row in self.rows for src in row.source))

    @property
    def triggers(self) -> tuple[str, ...]:
        """Every trigger named in the table, in first-appearance order."""
        return tuple(dict.fromkeys(row.trigger for row in self.rows))

    def is_legal(self, state: str, trigger: str) -> bool:
        """True when some row allows ``trigger`` in ``state``."""
        return (state, trigger) in self.pairs

    def allowed_changes(self) -> frozenset[tuple[str, str, str]]:
        """Every ``(source, trigger, dest)`` the table allows; internal rows give ``dest == source``."""
        return frozenset(
            (src, row.trigger, row.dest if row.dest is not None else src) for row in self.rows for src in row.source
        )

    def rows_for(self, state: str, trigger: str) -> list[Row]:
        """The rows that apply to ``trigger`` in ``state``, in evaluation order."""
        return [row for row in self.rows if row.trigger == trigger and state in row.source]


def _wrap_guard(fn: Guard) -> Callable[[Any], bool]:
    def check(event_data: Any) -> bool:
        return fn(event_data.model, event_data.args[0])

    check.__name__ = getattr(fn, "__name__", "guard")
    return check


def _wrap_effect(fn: Effect) -> Callable[[Any], None]:
    def run(event_data: Any) -> None:
        fn(event_data.model, event_data.args[0])

    run.__name__ = getattr(fn, "__name__", "effect")
    return run


def _resolve(names: Sequence[str], registry: Mapping[str, Any], kind: str, spec: str) -> list[Any]:
    missing = [n for n in names if n not in registry]
    if missing:
        raise ValueError(f"{spec}: {kind} {missing} not defined")
    return [registry[n] for n in names]


#: The library's own logger: its per-trigger debug and info lines are shown exactly when it is enabled.
_LIBRARY_LOG = logging.getLogger("transitions.core")


class _Condition(Condition):  # type: ignore[misc]  # transitions ships no type hints
    """A guard already resolved to a callable taking the event data (``send_event=True``).

    The library resolves the callable by name on every check; :func:`build_runtime_machine`
    resolves every guard once, when it builds the machine.
    """

    def check(self, event_data: Any) -> bool:
        guard: Any = self.func
        return bool(guard(event_data) == self.target)


class _Transition(Transition):  # type: ignore[misc]  # transitions ships no type hints
    """The library's ``Transition`` with its four per-transition debug calls skipped while no one listens.

    Each costs ~0.4 us even at a disabled level (the call, not the formatting; formatting is
    lazy), so raising the logger's level saves nothing: about 3-5% of a hostile session's CPU
    (~970k calls in 1,000 legged condors). With DEBUG enabled for ``transitions.core`` the
    library's own method runs, lines and all. The body is ``Transition.execute`` of
    transitions 0.9 (pinned below 0.10 in pyproject.toml) minus the logging.
    """

    condition_cls = _Condition

    def execute(self, event_data: Any) -> bool:
        if _LIBRARY_LOG.isEnabledFor(logging.DEBUG):
            return bool(super().execute(event_data))
        machine = event_data.machine
        if self.prepare:
            machine.callbacks(self.prepare, event_data)
        if not self._eval_conditions(event_data):
            return False
        # Most rows have no effects and our machines no machine-wide callbacks: skip empty calls.
        if machine.before_state_change:
            machine.callbacks(itertools.chain(machine.before_state_change, self.before), event_data)
        elif self.before:
            machine.callbacks(self.before, event_data)
        if self.dest:  # None: an internal transition, no state change
            self._change_state(event_data)
        if machine.after_state_change:
            machine.callbacks(itertools.chain(self.after, machine.after_state_change), event_data)
        elif self.after:
            machine.callbacks(self.after, event_data)
        return True

    def run_quiet(self, event_data: Any) -> bool:
        """:meth:`execute` for :meth:`_Event.trigger`, which has checked that no one listens.

        The library's steps in its order (prepare, guards, before, state change with exit and
        enter callbacks, after), without its log calls and level checks, and calling each
        callback directly: :func:`build_runtime_machine` resolves every name to a callable and
        the machine sends the event data (``send_event=True``).
        """
        machine = event_data.machine
        prepare: list[Any] = self.prepare
        for func in prepare:
            func(event_data)
        for cond in self.conditions:
            if not cond.check(event_data):
                return False
        for func in itertools.chain(machine.before_state_change, self.before):
            func(event_data)
        if self.dest:  # None: an internal transition, no state change
            states = machine.states
            on_exit: list[Any] = states[self.source].on_exit
            for func in on_exit:
                func(event_data)
            dest = states[self.dest]
            setattr(event_data.model, machine.model_attribute, dest.value)
            event_data.state = dest
            for func in dest.on_enter:
                func(event_data)
            if dest.final:
                for func in machine.on_final:
                    func(event_data)
        for func in itertools.chain(self.after, machine.after_state_change):
            func(event_data)
        return True

    def _eval_conditions(self, event_data: Any) -> bool:
        if _LIBRARY_LOG.isEnabledFor(logging.DEBUG):
            return bool(super()._eval_conditions(event_data))
        for cond in self.conditions:  # noqa: SIM110 - a loop, not all(): no generator on the hot path
            if not cond.check(event_data):
                return False
        return True


class _State(State):  # type: ignore[misc]  # transitions ships no type hints
    """The library's ``State`` with its enter/exit log lines (a debug and an info call each) skipped
    while no one listens; the library's own methods run whenever INFO is enabled for
    ``transitions.core``."""

    def enter(self, event_data: Any) -> None:
        if _LIBRARY_LOG.isEnabledFor(logging.INFO):
            super().enter(event_data)
        elif self.on_enter:
            event_data.machine.callbacks(self.on_enter, event_data)

    def exit(self, event_data: Any) -> None:
        if _LIBRARY_LOG.isEnabledFor(logging.INFO):
            super().exit(event_data)
        elif self.on_exit:
            event_data.machine.callbacks(self.on_exit, event_data)


class _Event(Event):  # type: ignore[misc]  # transitions ships no type hints
    """The library's ``Event`` with its per-trigger log lines skipped while no one listens.

    ``trigger`` is the library's chain ``Event.trigger`` -> ``Machine._process`` ->
    ``Event._trigger`` -> ``Event._process`` of transitions 0.9 in one call, minus its two debug
    lines and the partial it builds for a queue our machines do not have (without ``queued`` the
    library never fills it): ~1 us per trigger,
    two triggers (ticket and group) per broker event. With INFO enabled for ``transitions.core``,
    or a queued machine, the library's own chain runs.
    """

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:
        machine = self.machine
        if machine.has_queue or _LIBRARY_LOG.isEnabledFor(logging.INFO):
            return bool(super().trigger(model, *args, **kwargs))
        event_data = EventData(None, self, machine, model, args=args, kwargs=kwargs)
        state = event_data.state = machine.get_model_state(model)
        try:
            if self._is_valid_source(state):
                if machine.prepare_event:
                    machine.callbacks(machine.prepare_event, event_data)
                rows: list[Any] = self.transitions[state.name]
                for trans in rows:
                    event_data.transition = trans
                    if trans.run_quiet(event_data):
                        event_data.result = True
                        break
        except BaseException as err:
            event_data.error = err  # type: ignore[assignment]  # the library keeps any BaseException here
            if machine.on_exception:
                machine.callbacks(machine.on_exception, event_data)
            else:
                raise
        finally:
            if machine.finalize_event:
                machine.callbacks(machine.finalize_event, event_data)
        return bool(event_data.result)


class _Machine(Machine):  # type: ignore[misc]  # transitions ships no type hints
    transition_cls = _Transition
    event_cls = _Event
    state_cls = _State

    def callbacks(self, funcs: Iterable[Any], event_data: Any) -> None:
        # The library logs one INFO line per callback run: skipped while no one listens.
        if _LIBRARY_LOG.isEnabledFor(logging.INFO):
            super().callbacks(funcs, event_data)
            return
        for func in funcs:
            self.callback(func, event_data)


def build_runtime_machine(spec: MachineSpec, guards: Mapping[str, Guard], effects: Mapping[str, Effect]) -> Machine:
    """Build the one shared ``transitions`` machine that runs every model of this kind."""
    wrapped_guards = {name: _wrap_guard(fn) for name, fn in guards.items()}
    wrapped_effects = {name: _wrap_effect(fn) for name, fn in effects.items()}
    transitions: list[dict[str, Any]] = []
    for row in spec.rows:
        transitions.append(
            {
                "trigger": row.trigger,
                "source": list(row.source),
                "dest": row.dest,
                "conditions": _resolve(row.conditions, wrapped_guards, "guards", spec.name),
                "unless": _resolve(row.unless, wrapped_guards, "guards", spec.name),
                "before": _resolve(row.before, wrapped_effects, "effects", spec.name),
                "after": _resolve(row.after, wrapped_effects, "effects", spec.name),
            }
        )
    return _Machine(
        model=None,
        states=list(spec.states),
        initial=spec.initial,
        transitions=transitions,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )
