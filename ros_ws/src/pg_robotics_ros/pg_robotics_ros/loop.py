"""A periodic loop scheduled on absolute time, with the timing figures a control loop is judged by.

Deadline k is `start + k * period` on the monotonic clock: a late tick does not shift the ones after it (no drift).
A tick that ends after the next deadline missed it (counted in `missed`); deadlines passed during an overrun
of whole periods are skipped (and counted) instead of run as a burst of catch-up ticks. Every tick's start time is
kept (a ring of `window` ticks) for the rate and the period jitter |actual period - nominal period|.

A tick that raises does not end the loop: the exception goes to `on_error` (which makes the owner safe and reports
it) and is counted; the loop goes on at its period. `last_tick_ns` (the start of the newest tick) tells a watcher
whether the loop is alive.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np


def percentile_ms(values_ns: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values_ns, q)) / 1e6, 3) if len(values_ns) else 0.0


class PeriodicLoop:
    def __init__(self, rate_hz: float, tick: Callable[[], None], name: str = "loop", window: int = 1 << 16,
                 on_error: Callable[[Exception], None] | None = None):
        if not 0 < rate_hz <= 1e4:  # also false for NaN
            raise ValueError(f"rate_hz: must be in (0, 10000], got {rate_hz}")
        self.rate_hz, self.period_ns = rate_hz, int(round(1e9 / rate_hz))
        self.tick, self.name, self.on_error = tick, name, on_error
        self._starts = np.zeros(window, dtype=np.int64)
        self.ticks = self.missed = self.errors = 0
        self.last_tick_ns = time.monotonic_ns()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.ticks = self.missed = 0
        self.last_tick_ns = time.monotonic_ns()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        period, starts = self.period_ns, self._starts
        deadline = time.monotonic_ns()
        while not self._stop.is_set():
            now = time.monotonic_ns()
            if deadline > now:
                # an Event wait wakes on stop() too; it sleeps on the remaining time to an absolute deadline
                if self._stop.wait((deadline - now) / 1e9):
                    break
                now = time.monotonic_ns()
            starts[self.ticks % len(starts)] = now
            self.ticks += 1
            self.last_tick_ns = now
            try:
                self.tick()
            except Exception as exc:  # the loop must outlive any tick
                self.errors += 1
                if self.on_error is not None:
                    try:
                        self.on_error(exc)
                    except Exception:  # counted above; the next tick tries again
                        pass
            deadline += period
            late = time.monotonic_ns() - deadline
            if late >= 0:  # this tick overran its period; whole periods overrun are skipped, not caught up
                self.missed += 1 + late // period
                deadline += (late // period) * period

    def last_tick_age_ms(self) -> float:
        return round((time.monotonic_ns() - self.last_tick_ns) / 1e6, 3)

    def stats(self) -> dict:
        """Measured rate (Hz), period jitter p99/max (ms), missed deadlines over the kept ticks, ticks that raised,
        and the age of the newest tick (ms)."""
        n = min(self.ticks, len(self._starts))
        alive = {"loop_errors": self.errors, "loop_last_tick_age_ms": self.last_tick_age_ms()}
        if n < 2:
            return {"ticks": self.ticks, "rate_hz": 0.0, "period_jitter_p99_ms": 0.0, "period_jitter_max_ms": 0.0,
                    "missed_deadlines": self.missed, **alive}
        # oldest first: once the ring has wrapped, the oldest start is at the next write position
        starts = np.roll(self._starts, -(self.ticks % n)) if self.ticks > n else self._starts[:n]
        periods = np.diff(starts)
        jitter = np.abs(periods - self.period_ns)
        return {"ticks": self.ticks, "rate_hz": round(1e9 * (n - 1) / float(starts[-1] - starts[0]), 3),
                "period_jitter_p99_ms": percentile_ms(jitter, 99), "period_jitter_max_ms": percentile_ms(jitter, 100),
                "missed_deadlines": self.missed, **alive}
