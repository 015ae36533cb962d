"""Acquisition dates, date intervals and time baselines.

Dates are ``datetime.date``. An :class:`Interval` is the pair of acquisition dates of an image
pair or the span of a stack band, written ``YYYY-MM-DD/YYYY-MM-DD``. Both ends are inclusive for
overlap bookkeeping; the *baseline* (used to turn displacement into velocity) is ``end - start``
in days, and velocity = displacement / (baseline / 365.25) in m/yr.
"""

import calendar
import datetime as dt
import os
import re
from dataclasses import dataclass

from ..errors import InputError

DAYS_PER_YEAR = 365.25

# Product-name patterns, most specific first. Each captures YYYYMMDD (optionally with T/time).
_NAME_PATTERNS = [
    # Landsat collection names: LC08_L1TP_PPPRRR_YYYYMMDD_YYYYMMDD_...; the first date is acquisition.
    re.compile(r"L[COTEM]0\d_[A-Z0-9]{4}_\d{6}_(\d{8})_"),
    # Sentinel-2: S2A_MSIL1C_YYYYMMDDTHHMMSS_...
    re.compile(r"S2[ABCD]_MSI[A-Z0-9]{3}_(\d{8})T\d{6}"),
    # Sentinel-1: S1A_IW_GRDH_1SDV_YYYYMMDDTHHMMSS_...
    re.compile(r"S1[ABCD]_[A-Z0-9]{2}_[A-Z0-9]{4}_[A-Z0-9]{4}_(\d{8})T\d{6}"),
    # ISO date anywhere: YYYY-MM-DD
    re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)"),
    # Compact date anywhere: YYYYMMDD
    re.compile(r"(?<!\d)(\d{8})(?!\d)"),
]

_METADATA_KEYS = ("ACQUISITION_DATE", "DATE", "TIFFTAG_DATETIME")


def parse_date(text):
    """Parse ``YYYY-MM-DD``, ``YYYYMMDD`` or ``YYYY:MM:DD[ hh:mm:ss]`` (TIFF) into a date.

    Raises :class:`InputError` with the offending text when it is not a valid date.
    """
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    s = str(text).strip()
    m = re.match(r"^(\d{4})[-:/]?(\d{2})[-:/]?(\d{2})", s)
    if not m:
        raise InputError(f"'{text}' is not a date (expected YYYY-MM-DD or YYYYMMDD)")
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise InputError(f"'{text}' is not a valid date: {exc}") from None


def date_from_name(name):
    """The acquisition date encoded in a product or file name, or None.

    Understands Landsat, Sentinel-2 and Sentinel-1 product names, then any ``YYYY-MM-DD`` or
    ``YYYYMMDD`` in the name. Only the file's base name is looked at.
    """
    base = os.path.basename(str(name))
    for pattern in _NAME_PATTERNS:
        for m in pattern.finditer(base):
            try:
                return parse_date(m.group(1))
            except InputError:
                continue  # e.g. an 8-digit number that is not a date: try the next match
    return None


def date_from_metadata(metadata):
    """The acquisition date in a GDAL metadata dict (ACQUISITION_DATE, DATE, TIFFTAG_DATETIME)."""
    for key in _METADATA_KEYS:
        if metadata.get(key):
            try:
                return parse_date(metadata[key])
            except InputError:
                continue
    return None


def acquisition_date(path, given=None, what="image"):
    """The acquisition date of a raster: ``given`` if set, else its name, else GDAL metadata.

    Raises :class:`InputError` naming the file when none of them holds a date.
    """
    if given not in (None, ""):
        return parse_date(given)
    d = date_from_name(path)
    if d is not None:
        return d
    from .raster import open_raster  # local import: raster_io imports this module

    ds = open_raster(path)
    d = date_from_metadata(ds.GetMetadata() or {})
    if d is None:
        raise InputError(
            f"No acquisition date for {what} '{path}': none in its name (YYYYMMDD, YYYY-MM-DD or a "
            "Landsat/Sentinel product name) or its metadata (ACQUISITION_DATE, DATE, "
            "TIFFTAG_DATETIME). Give the date explicitly.")
    return d


def baseline_days(start, end, what="pair"):
    """``end - start`` in days; raises :class:`InputError` when it is not positive."""
    days = (end - start).days
    if days <= 0:
        raise InputError(
            f"The time baseline of {what} is {days} days ({start.isoformat()} to "
            f"{end.isoformat()}): the second date must be after the first.")
    return days


def baseline_years(start, end, what="pair"):
    """The time baseline in years of 365.25 days (positive, else :class:`InputError`)."""
    return baseline_days(start, end, what) / DAYS_PER_YEAR


@dataclass(frozen=True, order=True)
class Interval:
    """A date interval ``[start, end]``, both inclusive (for overlaps); baseline = end - start."""

    start: dt.date
    end: dt.date

    @classmethod
    def parse(cls, text):
        """Parse ``YYYY-MM-DD/YYYY-MM-DD`` (a stack band description)."""
        parts = str(text).strip().split("/")
        if len(parts) != 2:
            raise InputError(f"'{text}' is not a date interval (expected START/END, e.g. "
                             "2019-06-03/2019-07-05)")
        start, end = parse_date(parts[0]), parse_date(parts[1])
        if end < start:
            raise InputError(f"Date interval '{text}' ends before it starts")
        return cls(start, end)

    @classmethod
    def month(cls, year, month):
        """The calendar month as an interval from its first to its last day."""
        last = calendar.monthrange(year, month)[1]
        return cls(dt.date(year, month, 1), dt.date(year, month, last))

    def __str__(self):
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    @property
    def days(self):
        """The baseline in days (end - start)."""
        return (self.end - self.start).days

    @property
    def mid(self):
        """The middle date (rounded down to a day)."""
        return self.start + dt.timedelta(days=self.days // 2)

    @property
    def decimal_year(self):
        """The middle of the interval as a decimal year (e.g. 2019.54)."""
        return decimal_year(self.start + (self.end - self.start) / 2)

    def overlap_days(self, other):
        """Number of days both intervals cover (inclusive ends), 0 when disjoint."""
        lo, hi = max(self.start, other.start), min(self.end, other.end)
        return max((hi - lo).days + 1, 0)


def decimal_year(date):
    """A date (or datetime) as a decimal year: 2020-07-02 -> ~2020.5."""
    if isinstance(date, dt.datetime):
        day = date.date()
        frac = (date - dt.datetime(day.year, day.month, day.day)).total_seconds() / 86400.0
    else:
        day, frac = date, 0.0
    start = dt.date(day.year, 1, 1)
    length = (dt.date(day.year + 1, 1, 1) - start).days
    return day.year + ((day - start).days + frac) / length


def monthly_intervals(first, last):
    """Calendar-month intervals from the month of ``first`` to that of ``last`` (inclusive)."""
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(Interval.month(y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def match_intervals(targets, candidates, min_fraction=0.5):
    """For each target interval, the index of the candidate that overlaps it most, or -1.

    The rule (documented for users): a target (e.g. a UAV survey interval) is matched with the
    candidate band (e.g. a calendar month of a satellite stack) sharing the most days with it,
    provided the shared days are at least ``min_fraction`` of the target's days (inclusive ends);
    ties go to the candidate whose middle is nearest the target's middle.
    """
    out = []
    for t in targets:
        best, best_key = -1, None
        need = min_fraction * (t.days + 1)
        for i, c in enumerate(candidates):
            days = t.overlap_days(c)
            if days <= 0 or days < need:
                continue
            key = (days, -abs((c.mid - t.mid).days))
            if best_key is None or key > best_key:
                best, best_key = i, key
        out.append(best)
    return out
