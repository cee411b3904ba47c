"""Cheap versions of every raw table's source files, to know without reading them that nothing changed."""

from __future__ import annotations

from pathlib import Path

from rootassets.neon.products import PRODUCTS
from rootassets.neon.site_attributes import SITE_ATTRIBUTE_TABLES, site_attributes_fingerprint
from rootassets.neon.soil_water import discover, soil_water_folder
from rootassets.neon.source import NeonSource

SOIL_WATER_TABLES = ("swc_sensor_positions", "swc_files")


def raw_fingerprints(source: NeonSource, site_attributes: Path | None, soil_water: Path | None,
                     release: str) -> dict[str, str | None]:
    """{raw table: fingerprint of the files it is read from}; None where the source cannot tell."""
    found: dict[str, str | None] = {}
    for product in PRODUCTS.values():
        fingerprint = source.fingerprint(product, release)
        found.update({table: fingerprint for table in product.all_tables})
    attributes = site_attributes_fingerprint(site_attributes) if site_attributes and site_attributes.is_dir() else None
    found.update({table: attributes for table in SITE_ATTRIBUTE_TABLES})
    soil_water_files = discover(soil_water_folder(soil_water, release)).fingerprint()
    found.update({table: soil_water_files for table in SOIL_WATER_TABLES})
    return found
