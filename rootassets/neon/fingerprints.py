"""Cheap versions of every raw table's source files, to know without reading them that nothing changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rootassets.neon.products import PRODUCTS
from rootassets.neon.site_attributes import SITE_ATTRIBUTE_TABLES, site_attributes_fingerprint
from rootassets.neon.soil_water import discover, soil_water_folder
from rootassets.neon.source import NeonSource

SOIL_WATER_TABLES = ("swc_sensor_positions", "swc_files")
DOCUMENT_TABLES = ("variables", "issue_log", "product_citations")


def documents_fingerprint(source: NeonSource, release: str) -> str | None:
    """The documentation tables are read from every product's files: their fingerprints together."""
    parts = [source.fingerprint(product, release) for product in PRODUCTS.values()]
    if any(p is None for p in parts):
        return None
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]


def raw_fingerprints(source: NeonSource, site_attributes: Path | None, soil_water: Path | None,
                     release: str) -> dict[str, str | None]:
    """{raw table: fingerprint of the files it is read from}; None where the source cannot tell."""
    found: dict[str, str | None] = {}
    for product in PRODUCTS.values():
        fingerprint = source.fingerprint(product, release)
        found.update({table: fingerprint for table in product.all_tables})
    found.update({table: documents_fingerprint(source, release) for table in DOCUMENT_TABLES})
    attributes = site_attributes_fingerprint(site_attributes) if site_attributes and site_attributes.is_dir() else None
    found.update({table: attributes for table in SITE_ATTRIBUTE_TABLES})
    soil_water_files = discover(soil_water_folder(soil_water, release)).fingerprint()
    found.update({table: soil_water_files for table in SOIL_WATER_TABLES})
    return found
