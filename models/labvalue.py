"""Lab values that may be censored (">202,000", "<50"): comparisons that stay honest.

A comparison returns True or False when the censored value settles it and None when
it cannot (for example ">4,000" compared with 6,000).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LabValue:
    value: float
    comparator: str | None = None  # None, "<", "<=", ">=", ">"

    def above(self, threshold: float, inclusive: bool = False) -> bool | None:
        """Is the true value > threshold (>= with inclusive)?"""
        v, c = self.value, self.comparator
        if c is None:
            return v >= threshold if inclusive else v > threshold
        if c in (">", ">="):
            # true value > v (or >= v)
            if v > threshold or (v == threshold and (c == ">" or inclusive)):
                return True
            return None
        # "<" or "<=": true value < v (or <= v)
        if v < threshold or (v == threshold and (c == "<" or not inclusive)):
            return False
        return None

    def below(self, threshold: float, inclusive: bool = False) -> bool | None:
        """Is the true value < threshold (<= with inclusive)?"""
        above = self.above(threshold, inclusive=not inclusive)
        return None if above is None else not above

    def greater_than(self, other: LabValue) -> bool | None:
        """Is this true value certainly above the other's true value?"""
        if other.comparator in (">", ">="):
            return None  # the other is only a lower bound
        return self.above(other.value)

    def less_than(self, other: LabValue) -> bool | None:
        """Is this true value certainly below the other's true value?"""
        if other.comparator in ("<", "<="):
            return None  # the other is only an upper bound
        return self.below(other.value)

    def __str__(self) -> str:
        return f"{self.comparator or ''}{self.value:g}"
