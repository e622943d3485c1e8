"""Calendar math: intervals, time zones, weekly hours and iCalendar invitations.

``windows`` is not imported here: it reads offer types from ``kernel.lexicon``, which in
turn uses this package, so import it as ``kernel.calendar.windows``.
"""

from kernel.calendar.intervals import Interval, intersect, normalize, subtract, union

__all__ = ["Interval", "intersect", "normalize", "subtract", "union"]
