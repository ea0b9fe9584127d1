"""HTTP-level faults of the TastyTrade emulator (a knob set separate from the broker's ChaosProfile).

The broker simulator decides what happens to orders; these knobs decide what happens to the
HTTP exchange on top of it:

* ``error_rate`` / ``error_burst``: a request starts a burst of ``error_burst`` consecutive
  5xx answers (500/502/503, the request is not processed);
* ``rate_limit_rate`` / ``retry_after``: 429 with a ``Retry-After`` header (not processed);
* ``slow_rate`` / ``slow_seconds``: the request IS processed, then the answer is held back
  ``slow_seconds`` (longer than the client's read timeout: a POST that times out after the
  order was accepted);
* ``drop_rate``: the request IS processed, then the connection is closed without an answer;
* ``truncate_rate`` / ``garbage_rate``: the request IS processed, then the body is cut short /
  replaced by bytes that are not JSON.

Draws come from one seeded RNG (deterministic for a given sequence of requests). Tests can also
script exact faults with :meth:`FaultInjector.script` ("the next POST to /orders times out after
being accepted"), which take precedence over the random knobs. The token endpoint is exempt
unless ``include_auth`` is set.
"""

from __future__ import annotations

import random
import re
import threading
from enum import StrEnum

import attrs

__all__ = ["Fault", "FaultInjector", "HttpFaults"]


class Fault(StrEnum):
    """One thing that can go wrong with an HTTP exchange."""

    #: Answer 500/502/503 without processing the request.
    SERVER_ERROR = "server_error"
    #: Answer 429 with Retry-After without processing the request.
    RATE_LIMIT = "rate_limit"
    #: Close the connection without processing the request.
    DROP_BEFORE = "drop_before"
    #: Process, then answer only after ``slow_seconds``.
    SLOW = "slow"
    #: Process, then close the connection without an answer.
    DROP_AFTER = "drop_after"
    #: Process, then send half of the body.
    TRUNCATE = "truncate"
    #: Process, then send a body that is not JSON.
    GARBAGE = "garbage"

    @property
    def before_processing(self) -> bool:
        """True when the request is not processed at all."""
        return self in (Fault.SERVER_ERROR, Fault.RATE_LIMIT, Fault.DROP_BEFORE)


def _probability(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{attr.name}={value!r}: must be a probability in [0, 1]")


def _p(default: float = 0.0) -> float:
    return attrs.field(default=default, validator=_probability)  # type: ignore[no-any-return]


@attrs.frozen
class HttpFaults:
    """Probabilities (per request) of HTTP faults; all zero by default."""

    error_rate: float = _p()
    error_burst: int = 3
    rate_limit_rate: float = _p()
    retry_after: str = "1"
    slow_rate: float = _p()
    slow_seconds: float = 2.0
    drop_rate: float = _p()
    truncate_rate: float = _p()
    garbage_rate: float = _p()
    include_auth: bool = False

    @classmethod
    def none(cls) -> HttpFaults:
        """No HTTP faults."""
        return cls()

    @classmethod
    def preset(cls, name: str, slow_seconds: float = 2.0) -> HttpFaults:
        """``none``, ``light`` or ``heavy``."""
        if name == "none":
            return cls()
        if name == "light":
            return cls(error_rate=0.002, rate_limit_rate=0.001, retry_after="0", slow_rate=0.0005,
                       slow_seconds=slow_seconds, drop_rate=0.001, truncate_rate=0.001, garbage_rate=0.0005)
        if name == "heavy":
            return cls(error_rate=0.01, rate_limit_rate=0.005, retry_after="0", slow_rate=0.002,
                       slow_seconds=slow_seconds, drop_rate=0.005, truncate_rate=0.005, garbage_rate=0.003)
        raise ValueError(f"http fault preset {name!r}: expected none, light or heavy")


@attrs.define
class _Rule:
    method: str | None
    pattern: re.Pattern[str]
    fault: Fault
    remaining: int


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject."""

    def __init__(self, faults: HttpFaults | None = None, seed: int = 0) -> None:
        self.faults = faults if faults is not None else HttpFaults()
        self._rng = random.Random(seed)
        self._burst = 0
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        #: How many faults of each kind were injected.
        self.injected: dict[str, int] = {}

    def script(self, fault: Fault | str, *, method: str | None = None, path: str = ".*", count: int = 1) -> None:
        """Inject ``fault`` into the next ``count`` requests whose path matches the regex ``path``."""
        with self._lock:
            self._rules.append(_Rule(method.upper() if method else None, re.compile(path), Fault(fault), count))

    def clear(self) -> None:
        """Drop every scripted fault."""
        with self._lock:
            self._rules.clear()

    @property
    def scripted_pending(self) -> int:
        """Scripted faults not injected yet."""
        with self._lock:
            return sum(r.remaining for r in self._rules)

    def decide(self, method: str, path: str, is_auth: bool) -> Fault | None:
        """The fault for this request, or None."""
        with self._lock:
            fault = self._decide(method, path, is_auth)
            if fault is not None:
                self.injected[fault.value] = self.injected.get(fault.value, 0) + 1
            return fault

    def _decide(self, method: str, path: str, is_auth: bool) -> Fault | None:
        for rule in self._rules:
            if rule.remaining > 0 and (rule.method is None or rule.method == method) and rule.pattern.search(path):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return rule.fault
        f = self.faults
        if is_auth and not f.include_auth:
            return None
        if self._burst > 0:
            self._burst -= 1
            return Fault.SERVER_ERROR
        rng = self._rng
        if f.error_rate and rng.random() < f.error_rate:
            self._burst = max(0, f.error_burst - 1)
            return Fault.SERVER_ERROR
        if f.rate_limit_rate and rng.random() < f.rate_limit_rate:
            return Fault.RATE_LIMIT
        if f.slow_rate and rng.random() < f.slow_rate:
            return Fault.SLOW
        if f.drop_rate and rng.random() < f.drop_rate:
            return Fault.DROP_AFTER if rng.random() < 0.5 else Fault.DROP_BEFORE
        if f.truncate_rate and rng.random() < f.truncate_rate:
            return Fault.TRUNCATE
        if f.garbage_rate and rng.random() < f.garbage_rate:
            return Fault.GARBAGE
        return None

    def server_error_status(self) -> int:
        """Which 5xx to answer."""
        with self._lock:
            return self._rng.choice((500, 502, 503))
