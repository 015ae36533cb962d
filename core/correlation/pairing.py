"""Which images to correlate with which: the pairing rule of batch correlation.

Rule (documented for users): images are grouped by sensor (from the product name, else the
``SENSOR`` metadata, else one unnamed group) and sorted by acquisition date
(:func:`core.io.dates.acquisition_date`); every two images of a group whose dates are between
``min_days`` and ``max_days`` apart (inclusive) form a pair, the earlier image being the reference.
"""

import glob
import os
import re
from dataclasses import dataclass

from ..io.dates import acquisition_date
from ..errors import InputError
from ..io.atomic import TAG
from ..io.raster import open_raster

SENSOR_PATTERNS = (
    ("landsat", re.compile(r"^L[COTEM]0\d_")),
    ("sentinel2", re.compile(r"^S2[ABCD]_MSI")),
    ("sentinel1", re.compile(r"^S1[ABCD]_")),
)
IMAGE_EXTENSIONS = (".tif", ".tiff", ".jp2", ".jpg", ".jpeg", ".png", ".img", ".vrt")


def sensor_from_name(path):
    """'landsat', 'sentinel2' or 'sentinel1' from a product file name, else ''."""
    base = os.path.basename(str(path))
    for sensor, pattern in SENSOR_PATTERNS:
        if pattern.match(base):
            return sensor
    return ""


def image_sensor(path):
    """The sensor of an image: its product name, else its ``SENSOR`` metadata, else ''."""
    sensor = sensor_from_name(path)
    if sensor:
        return sensor
    return (open_raster(path, "image").GetMetadata() or {}).get("SENSOR", "").strip()


@dataclass(frozen=True)
class Pair:
    """An image pair: reference (earlier), secondary, their dates and the sensor."""

    reference: str
    secondary: str
    start: object
    end: object
    sensor: str

    @property
    def days(self):
        """The time baseline in days."""
        return (self.end - self.start).days

    @property
    def name(self):
        """A file-name-friendly label, e.g. ``sentinel2_20200101_20200121``."""
        return f"{self.sensor or 'pair'}_{self.start:%Y%m%d}_{self.end:%Y%m%d}"


def list_images(folder):
    """Raster files (by extension) directly in ``folder``, sorted by name (temporary files of
    runs under way or killed excluded)."""
    if not os.path.isdir(str(folder)):
        raise InputError(f"The image folder '{folder}' does not exist.")
    found = [p for p in glob.glob(os.path.join(str(folder), "*"))  # hidden files not included
             if os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS
             and TAG not in os.path.basename(p)]  # a killed run's temporary file
    return sorted(found)


def form_pairs(images, min_days, max_days, sensor=None):
    """Pairs of ``images`` (paths) by the rule of this module.

    ``sensor`` forces one sensor label for every image (all in one group). Images whose date
    cannot be found raise :class:`InputError` naming the file.
    """
    min_days, max_days = int(min_days), int(max_days)
    if min_days < 1 or max_days < min_days:
        raise InputError(f"The baseline range must satisfy 1 <= MIN_DAYS <= MAX_DAYS; got "
                         f"{min_days}..{max_days} days.")
    entries = []
    for path in dict.fromkeys(str(p) for p in images):  # keeps order, drops duplicates
        label = sensor if sensor else image_sensor(path)
        entries.append((acquisition_date(path, what="image"), label, path))
    entries.sort()
    pairs = []
    for i, (d0, s0, p0) in enumerate(entries):
        for d1, s1, p1 in entries[i + 1:]:
            days = (d1 - d0).days
            if days > max_days:
                break  # sorted by date: every later image is further away
            if s1 == s0 and days >= min_days:
                pairs.append(Pair(p0, p1, d0, d1, s0))
    return pairs
