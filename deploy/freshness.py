"""Is a sample new? One `StampGate` per input (joint states, IMU, ...), fed each sample's stamp.

A stamp newer than the last accepted one is new. An equal stamp is a repeat (no new data). An older one is
refused and counted, but a sender's clock can be reset (time goes back for good) or one sample can carry a stamp
far in the future (every later, correct stamp then looks old): after `reanchor_after` refused stamps in a row the
gate accepts the newest one and goes on from it. So a clock step either way costs a few samples, never a state
that only a reconfigure clears.
"""

from __future__ import annotations

import math

from .contract import is_number

NEW, REPEAT, OLD, REANCHORED, INVALID = "new", "repeat", "old", "reanchored", "invalid"


class StampGate:
    def __init__(self, reanchor_after: int = 3):
        self.reanchor_after = reanchor_after
        self.reset()

    def reset(self) -> None:
        self.last = -math.inf
        self.refused = 0  # older stamps in a row

    def offer(self, stamp) -> str:
        """NEW or REANCHORED: accept the sample; REPEAT, OLD, INVALID (not a finite number): drop it."""
        if type(stamp) is float and self.last < stamp < math.inf:  # the usual case, checked first
            self.last, self.refused = stamp, 0
            return NEW
        if not is_number(stamp):
            return INVALID
        if stamp > self.last:
            self.last, self.refused = stamp, 0
            return NEW
        if stamp == self.last:
            return REPEAT
        self.refused += 1
        if self.refused < self.reanchor_after:
            return OLD
        self.last, self.refused = stamp, 0
        return REANCHORED
