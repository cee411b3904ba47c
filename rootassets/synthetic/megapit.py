"""SYNTHETIC megapit snapshots at k times the sites of a real one, for scaling benchmarks.

Copy k of every real site gets a new four-letter code (`Q` + three letters,
never a NEON site) in every field where the code occurs, new uids, and per
root sample a log-normal factor (sd 0.2) applied to biomass, density and dry
mass alike, so the increment thickness (biomass / density) is unchanged while
profile shapes, and hence labels, vary like real sites. Soil tables and site
attributes are copied with the new codes. Copy 0 is the real data unchanged.
A `SYNTHETIC.md` file says what the folder is.
"""

from __future__ import annotations

import csv
import itertools
import re
import shutil
import string
import uuid
from pathlib import Path

import numpy as np

ROOT_NUMBERS = ("incrementRootBiomass", "incrementRootDensity", "rootDryMass")
TABLES = (
    "DP1.10066.001/mpr_perrootsample.csv",
    "DP1.10066.001/mpr_carbonNitrogen.csv",
    "DP1.00096.001/mgp_permegapit.csv",
    "DP1.00096.001/mgp_perhorizon.csv",
    "DP1.00096.001/mgp_perbiogeosample.csv",
    "DP1.00096.001/mgp_perbulksample.csv",
)


def synthetic_codes(count: int) -> list[str]:
    letters = string.ascii_uppercase
    return ["Q" + "".join(t) for t in itertools.islice(itertools.product(letters, repeat=3), count)]


def scale_snapshot(snapshot: Path, out: Path, factor: int, release: str = "RELEASE-2021", seed: int = 0) -> int:
    """Write a snapshot with `factor` copies of every site of `snapshot` to `out`; returns the root-sample rows."""
    snapshot, out = Path(snapshot), Path(out)
    sites = sorted(set(_root_sites(snapshot / release / TABLES[0])) | _pit_sites(snapshot / release / TABLES[2]))
    attributes = sorted((snapshot / "site-attributes").glob("*.csv"))
    codes = iter(synthetic_codes((factor - 1) * len(sites)))
    mapping = [{s: s for s in sites}] + [{s: next(codes) for s in sites} for _ in range(factor - 1)]
    pattern = re.compile(r"\b(" + "|".join(sites) + r")\b")
    rng = np.random.default_rng(seed)
    if out.exists():
        shutil.rmtree(out)
    (out / release).mkdir(parents=True)
    (out / "SYNTHETIC.md").write_text(
        f"# SYNTHETIC data\n\n{factor} copies of each site of {snapshot.name}, made by "
        "rootassets.synthetic.megapit for scaling benchmarks. Copies other than the first have invented site "
        "codes and perturbed root biomass. Not NEON data.\n"
    )
    rows_out = 0
    relative = [Path(release) / table for table in TABLES] + [p.relative_to(snapshot) for p in attributes]
    roots_table = relative[0]
    for table in relative:
        source, target = snapshot / table, out / table
        target.parent.mkdir(parents=True, exist_ok=True)
        with source.open(newline="", encoding="utf-8-sig") as f:
            header, *rows = list(csv.reader(f))
        numbers = [header.index(c) for c in ROOT_NUMBERS if c in header] if table == roots_table else []
        uid = header.index("uid") if "uid" in header else None
        with target.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for copy, codes_of in enumerate(mapping):
                for row in rows:
                    if copy:
                        if not any(pattern.search(v) for v in row):
                            continue  # a site without a megapit (site attributes): once is enough
                        row = [pattern.sub(lambda m, codes=codes_of: codes[m.group(1)], v) for v in row]
                        if uid is not None:
                            row[uid] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{copy}:{row[uid]}"))
                        if numbers:
                            noise = float(rng.lognormal(0.0, 0.2))
                            for i in numbers:
                                row[i] = _scaled(row[i], noise)
                    writer.writerow(row)
                    if table == roots_table:
                        rows_out += 1
    return rows_out


def _root_sites(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        return sorted({row["depthIncrementID"].split(".")[0] for row in reader if row.get("depthIncrementID")})


def _pit_sites(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return {row["siteID"] for row in csv.DictReader(f) if row.get("siteID")}


def _scaled(value: str, factor: float) -> str:
    try:
        return f"{float(value) * factor:.6g}"
    except ValueError:
        return value
