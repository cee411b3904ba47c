"""BibTeX for a release: every NEON product with its DOI, the paper reproduced, and rootassets itself."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

PAPER = {
    "key": "lu2025rootbimodality",
    "title": "A continental scale analysis reveals widespread root bimodality",
    "author": "Lu and others",
    "journal": "Nature Communications",
    "year": "2025",
}


def _escape(text: str) -> str:
    return re.sub(r"([{}\\])", r"\\\1", text)


def _key(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_") for p in parts)


def bibtex(products: Iterable[Mapping[str, Any]], release: str, rootassets_version: str) -> str:
    """Entries for each product row (product, product_name, doi), the paper, and rootassets."""
    year = release.removeprefix("RELEASE-") if release.startswith("RELEASE-") else "n.d."
    entries = []
    for row in products:
        doi = row.get("doi")
        fields = {
            "author": "{National Ecological Observatory Network (NEON)}",
            "title": _escape(f"{row['product_name']} ({row['product']}), {release}"),
            "publisher": "National Ecological Observatory Network (NEON)",
            "year": year,
            "note": "DOI announced by the data source" if doi else "no DOI announced by the data source",
        }
        if doi:
            fields.update({"doi": doi, "url": f"https://doi.org/{doi}"})
        entries.append(_entry("misc", _key("neon", row["product"], release), fields))
    entries.append(
        _entry(
            "article",
            PAPER["key"],
            {k: v for k, v in PAPER.items() if k != "key"}
            | {"note": "authors as listed in the journal; see the article for the full list"},
        )
    )
    entries.append(
        _entry(
            "software",
            _key("rootassets", rootassets_version),
            {
                "title": "rootassets: reproducible NEON root-bimodality assets",
                "version": rootassets_version,
                "note": f"computed the results of {release}",
            },
        )
    )
    return "\n".join(entries)


def _entry(kind: str, key: str, fields: Mapping[str, str]) -> str:
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items())
    return f"@{kind}{{{key},\n{body}\n}}\n"
