"""NEON's documentation of a product: the variables table, the readme and its issue log.

The variables file gives each field's description, type and units (NEON's own
columns are kept as published); the issue log is the API's `changeLogs` for
the product, or, offline, the readme's ISSUE LOG section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from rootassets.neon.csvfiles import NULL_VALUES
from rootassets.neon.errors import NeonDataError

VARIABLES_COLUMNS = ("table", "fieldName", "description", "dataType", "units")
ISSUE_LOG_COLUMNS = (
    "id",
    "parentIssueID",
    "issueDate",
    "resolvedDate",
    "dateRangeStart",
    "dateRangeEnd",
    "locationAffected",
    "issue",
    "resolution",
)


@dataclass
class ProductDocuments:
    """What a source says about a product in one release, besides its data tables."""

    variables: pl.DataFrame | None = None  # NEON's columns as published, all strings
    variables_file: str | None = None
    readme: str | None = None
    readme_file: str | None = None
    change_logs: list[dict[str, Any]] = field(default_factory=list)
    change_logs_origin: str = "none"  # "api" (changeLogs) | "readme" (ISSUE LOG section) | "none"


def read_variables_table(path: Path) -> pl.DataFrame:
    """A NEON variables file with every column as text; refuses a file without NEON's columns."""
    try:
        frame = pl.read_csv(path, infer_schema=False, null_values=NULL_VALUES)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise NeonDataError(f"{path.name}: not a readable variables file ({exc})") from exc
    if frame.width and frame.columns[0] in ("", "...1"):
        frame = frame.drop(frame.columns[0])
    missing = [c for c in VARIABLES_COLUMNS if c not in frame.columns]
    if missing:
        raise NeonDataError(f"{path.name}: variables file lacks column(s) {missing}")
    return frame


def merge_variables(frames: Iterable[pl.DataFrame]) -> pl.DataFrame | None:
    """One variables table from several files: one row per (table, fieldName), the first seen kept."""
    present = [f for f in frames if f is not None and f.height]
    if not present:
        return None
    return pl.concat(present, how="diagonal_relaxed").unique(["table", "fieldName"], keep="first", maintain_order=True)


_ISSUE_FIELDS = {
    "Issue Date": "issueDate",
    "Issue": "issue",
    "Date Range": "dateRange",
    "Location(s) Affected": "locationAffected",
    "Resolution Date": "resolvedDate",
    "Resolution": "resolution",
}
_ISSUE_LINE = re.compile(
    r"^\s*(Issue Date|Issue|Date Range|Location\(s\) Affected|Resolution Date|Resolution):\s?(.*)$"
)


def issue_log_from_readme(text: str) -> list[dict[str, Any]]:
    """The entries of a NEON readme's ISSUE LOG section, with the API's changeLogs field names."""
    start = text.find("ISSUE LOG")
    if start < 0:
        return []
    section = text[start:]
    end = re.search(r"\n(ADDITIONAL INFORMATION|NEON DATA POLICY|DATA QUALITY AND VERSIONING)\b", section)
    section = section[: end.start()] if end else section
    entries: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    last: str | None = None
    for line in section.splitlines():
        match = _ISSUE_LINE.match(line)
        if match:
            key = _ISSUE_FIELDS[match.group(1)]
            if key == "issueDate":
                current = {}
                entries.append(current)
            if current is None:
                continue
            if key == "dateRange":
                start_end = [p.strip() for p in match.group(2).split(" to ")]
                current["dateRangeStart"] = start_end[0] or None
                current["dateRangeEnd"] = start_end[1] if len(start_end) > 1 else None
            else:
                current[key] = match.group(2).strip() or None
            last = key
        elif current is not None and last in ("issue", "resolution") and line.strip():
            current[last] = f"{current.get(last) or ''} {line.strip()}".strip()
    return entries


def issue_log_frame(change_logs: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """changeLogs entries as rows with the API's field names (all text; `id` may be empty offline)."""
    rows = [{c: None if e.get(c) is None else str(e.get(c)) for c in ISSUE_LOG_COLUMNS} for e in change_logs]
    return pl.DataFrame(rows, schema={c: pl.String for c in ISSUE_LOG_COLUMNS})
