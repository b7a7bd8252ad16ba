"""Time stamps of a series: reading them, the frequency of their grid, and the stamps after them.

A time column holds numbers (``1749``, ``3.5``: a step in the same unit) or ISO dates and times
(``1958-03``, ``1958-03-29``, ``2020-01-01 12:00``). The frequency is inferred as the most common
gap (calendar months, quarters and years are counted in months, so their unequal lengths in
days do not matter), or given (``--freq month``, ``2D``, ``H``, ...). Importing this module
imports numpy and the standard library only (``forecast.predict`` runs on the base install).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

# --freq names -> (unit, steps): months are calendar months, everything else fixed seconds
FREQ_NAMES = {
    "year": ("month", 12),
    "y": ("month", 12),
    "a": ("month", 12),
    "ys": ("month", 12),
    "as": ("month", 12),
    "quarter": ("month", 3),
    "q": ("month", 3),
    "qs": ("month", 3),
    "month": ("month", 1),
    "m": ("month", 1),
    "ms": ("month", 1),
    "week": ("second", 7 * 86400),
    "w": ("second", 7 * 86400),
    "day": ("second", 86400),
    "d": ("second", 86400),
    "hour": ("second", 3600),
    "h": ("second", 3600),
    "minute": ("second", 60),
    "min": ("second", 60),
    "t": ("second", 60),
    "second": ("second", 1),
    "s": ("second", 1),
}
# the seasonal period a frequency suggests (MASE's seasonal naive, the default season)
SEASONS = {("month", 1): 12, ("month", 3): 4, ("month", 12): 1}
SECOND_SEASONS = {86400 * 7: 52, 86400: 7, 3600: 24}


@dataclass(frozen=True)
class Frequency:
    """The grid step: ``unit`` "month" (calendar months), "second" (a fixed duration) or
    "number" (numeric time stamps), ``step`` of them."""

    unit: str
    step: float

    def describe(self) -> str:
        names = {1: "monthly", 3: "quarterly", 12: "yearly"}
        if self.unit == "month":
            return names.get(int(self.step), f"every {self.step:g} months")
        if self.unit == "second":
            for seconds, name in ((604800, "weekly"), (86400, "daily"), (3600, "hourly")):
                if self.step == seconds:
                    return name
            return f"every {self.step:g} s"
        return f"every {self.step:g}"

    def season(self) -> int:
        """The seasonal period this frequency suggests (1: none)."""
        if self.unit == "month":
            return SEASONS.get((self.unit, int(self.step)), 1)
        if self.unit == "second":
            return SECOND_SEASONS.get(int(self.step), 1)
        return 1


def parse_freq(text: str) -> Frequency:
    """``--freq``: a name (month, M, MS, Q, Y, W, D, H, min, S, ...) with an optional multiple
    (``2D``, ``15min``), or a number (the step of numeric time stamps)."""
    match = re.fullmatch(r"\s*(\d*\.?\d*)\s*([A-Za-z]*)\s*", text)
    if not match or not (match.group(1) or match.group(2)):
        raise ValueError(f"--freq: cannot read {text!r} (e.g. month, D, 2H, 15min, Y, 1)")
    count, name = match.group(1), match.group(2).lower()
    multiple = float(count) if count else 1.0
    if not name:
        return Frequency("number", multiple)
    if name not in FREQ_NAMES:
        raise ValueError(f"--freq: unknown unit {name!r} (known: {', '.join(FREQ_NAMES)})")
    unit, steps = FREQ_NAMES[name]
    return Frequency(unit, steps * multiple)


@dataclass
class TimeStamp:
    """One parsed time stamp: its value on a number line (months since year 0 for dates that
    are whole months, seconds otherwise, or the number itself) and how to write its kind."""

    number: float | None  # numeric stamps
    moment: dt.datetime | None  # dates and times
    style: str  # "number", "integer", "month" (YYYY-MM), "date", "datetime"


def parse_time(text: str) -> TimeStamp:
    """A time stamp, or ValueError."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        style = "integer" if re.fullmatch(r"[+-]?\d+", text) else "number"
        return TimeStamp(number, None, style)
    if re.fullmatch(r"\d{4}-\d{2}", text):
        return TimeStamp(None, dt.datetime.strptime(text, "%Y-%m"), "month")
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    style = "date" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else "datetime"
    return TimeStamp(None, moment, style)


def month_index(moment: dt.datetime) -> int:
    return moment.year * 12 + moment.month - 1


class TimeAxis:
    """The regular grid of a series' stamps: where each stamp falls, and the stamps after."""

    def __init__(self, stamps: list[TimeStamp], freq: Frequency | None):
        kinds = {s.moment is None for s in stamps}
        if len(kinds) > 1:
            raise ValueError("the time column mixes numbers and dates")
        self.numeric = stamps[0].moment is None
        self.style = stamps[-1].style
        self.freq = freq or self.infer(stamps)
        if self.numeric and self.freq.unit != "number":
            raise ValueError(f"numeric time stamps need a numeric --freq, got {self.freq.unit}")
        if not self.numeric and self.freq.unit == "number":
            raise ValueError("dates need a --freq with a unit (month, D, H, ...), not a number")
        self.tz = None if self.numeric else stamps[0].moment.tzinfo

    def coordinate(self, stamp: TimeStamp) -> float:
        """The stamp on a number line in the grid's unit."""
        if self.numeric:
            return stamp.number
        if self.freq.unit == "month":
            return float(month_index(stamp.moment))
        return stamp.moment.timestamp()

    def infer(self, stamps: list[TimeStamp]) -> Frequency:
        if len(stamps) < 2:
            raise ValueError("a series needs at least two time stamps to infer its frequency")
        if self.numeric:
            gaps = Counter(round(b.number - a.number, 9) for a, b in zip(stamps, stamps[1:]))
            return Frequency("number", gaps.most_common(1)[0][0])
        moments = [s.moment for s in stamps]
        month_ends = all(m.day == calendar.monthrange(m.year, m.month)[1] for m in moments)
        same_day = len({m.day for m in moments}) == 1 or month_ends
        if same_day and len({m.time() for m in moments}) == 1:  # whole months: count in months
            gaps = Counter(month_index(b) - month_index(a) for a, b in zip(moments, moments[1:]))
            return Frequency("month", float(gaps.most_common(1)[0][0]))
        gaps = Counter((b - a).total_seconds() for a, b in zip(moments, moments[1:]))
        return Frequency("second", gaps.most_common(1)[0][0])

    def position(self, stamp: TimeStamp, origin: TimeStamp) -> float:
        """Grid steps from ``origin`` to ``stamp`` (a whole number on the grid)."""
        return (self.coordinate(stamp) - self.coordinate(origin)) / self.freq.step

    def after(self, last: TimeStamp, steps: int) -> list[str]:
        """The ``steps`` stamps after ``last``, written in the style of the input."""
        out = []
        for k in range(1, steps + 1):
            if self.numeric:
                value = last.number + k * self.freq.step
                out.append(str(int(round(value))) if self.style == "integer" else f"{value:g}")
                continue
            if self.freq.unit == "month":
                index = month_index(last.moment) + int(round(k * self.freq.step))
                year, month = index // 12, index % 12 + 1
                # month ends stay month ends (Jan 31 -> Feb 28 -> Mar 31)
                day = min(last.moment.day, calendar.monthrange(year, month)[1])
                if last.moment.day == calendar.monthrange(last.moment.year, last.moment.month)[1]:
                    day = calendar.monthrange(year, month)[1]
                moment = last.moment.replace(year=year, month=month, day=day)
            else:
                moment = last.moment + dt.timedelta(seconds=k * self.freq.step)
            out.append(self.write(moment))
        return out

    def write(self, moment: dt.datetime) -> str:
        if self.style == "month":
            return moment.strftime("%Y-%m")
        if self.style == "date":
            return moment.strftime("%Y-%m-%d")
        return moment.isoformat(sep=" ")
