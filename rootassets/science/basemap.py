"""The basemap under the site map: Natural Earth's shaded relief of the world as cartopy ships it.

Cartopy's wheel carries this one raster (Natural Earth I, downsampled to 0.5 degree, public domain), so the
map needs no download at run time; its coastline and border vectors, which it would download, are not used.
Reading a file that ships with an installed package is the only I/O here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

WORLD_EXTENT = (-180.0, 180.0, -90.0, 90.0)  # the image is plate carree: longitude and latitude in degrees
NATURAL_EARTH_CITATION = "Natural Earth (naturalearthdata.com), shaded relief, via cartopy"


@lru_cache(maxsize=1)
def world_relief() -> np.ndarray:
    """The world's shaded relief as an RGB array (rows from north to south), read once per process."""
    import cartopy
    from PIL import Image

    path = Path(cartopy.config["repo_data_dir"]) / "raster" / "natural_earth" / "50-natural-earth-1-downsampled.png"
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def map_extent(longitudes: np.ndarray, latitudes: np.ndarray, margin_deg: float = 6.0) -> tuple[float, ...]:
    """(west, east, south, north) around the points with a margin, within the world; the conterminous US and
    its surroundings when there are no points."""
    if longitudes.size == 0:
        return (-130.0, -60.0, 20.0, 55.0)
    west, east = max(-180.0, float(longitudes.min()) - margin_deg), min(180.0, float(longitudes.max()) + margin_deg)
    south, north = max(-90.0, float(latitudes.min()) - margin_deg), min(90.0, float(latitudes.max()) + margin_deg)
    return (west, east, south, north)
