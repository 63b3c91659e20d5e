"""A fake clock for code that takes ``clock`` and ``sleep`` callables: sleeping only advances time."""

from __future__ import annotations

from collections.abc import Callable


class FakeClock:
    """``monotonic()`` is the time slept so far; every ``sleep(s)`` is recorded in ``sleeps`` and then
    ``on_sleep`` (if given) runs, e.g. to change the world the code under test is waiting for."""

    def __init__(self, on_sleep: Callable[[FakeClock], None] | None = None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self)
