"""Build a second NEON release from the snapshot with planted, known differences."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from rootassets.neon.csvfiles import NULL_VALUES


def copy_release(snapshot: Path, target: Path, release: str = "RELEASE-2021") -> None:
    """A writable copy of one release and the site attributes under `target`."""
    shutil.copytree(snapshot / release, target / release)
    shutil.copytree(snapshot / "site-attributes", target / "site-attributes")


def plant_release(
    root: Path, source: str, new: str, drop_site: str, flatten_site: str, flatten_below_cm: float
) -> None:
    """Copy `root/source` to `root/new`: `drop_site` removed everywhere, and `flatten_site`'s live roots
    below `flatten_below_cm` removed (their increments stay sampled, so they count as zero)."""
    for path in sorted((root / source).rglob("*.csv")):
        out = root / new / path.relative_to(root / source)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame = pl.read_csv(path, infer_schema=False, null_values=NULL_VALUES)
        if "siteID" in frame.columns:
            frame = frame.filter(pl.col("siteID") != drop_site)
        if "depthIncrementID" in frame.columns:
            site = pl.col("depthIncrementID").str.split(".").list.first()
            top = pl.col("depthIncrementID").str.split(".").list.get(2).cast(pl.Float64)
            frame = frame.filter(site != drop_site)
            frame = frame.filter(
                ~((site == flatten_site) & (pl.col("rootStatus") == "live") & (top >= flatten_below_cm))
            )
        if "release" in frame.columns:
            frame = frame.with_columns(pl.lit(new).alias("release"))
        frame.write_csv(out, null_value="NA")
