"""Local snapshots: the stacked layout, and NEON's own download packages (folders and zips)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from rootassets.neon.errors import UnsafeArchiveError
from rootassets.neon.mirror import MirrorCatalogue
from rootassets.neon.products import ROOT_MEGAPIT, SOIL_MEGAPIT
from rootassets.neon.snapshot import SnapshotSource
from rootassets.neon.stack_by_table import package_files
from rootassets_tests.conftest import RELEASE

EXPECTED = {
    "mpr_perrootsample": (2913, 44),
    "mpr_carbonNitrogen": (2980, 44),
    "mgp_permegapit": (47, 47),
    "mgp_perhorizon": (346, 47),
    "mgp_perbiogeosample": (375, 47),
    "mgp_perbulksample": (375, 47),
}


def test_stacked_snapshot_tables(snapshot: Path) -> None:
    source = SnapshotSource(snapshot)
    assert source.releases() == [RELEASE]
    for product in (ROOT_MEGAPIT, SOIL_MEGAPIT):
        load = source.load_product(product, RELEASE)
        for name, table in load.tables.items():
            assert (table.frame.height, table.n_sites) == EXPECTED[name]
            assert table.frame["release"].unique().to_list() == [RELEASE]
            assert table.frame["publication_date"].null_count() == 0
            assert "" not in table.frame.columns  # R row names dropped
    assert "mpr_perdepthincrement: not in this snapshot" in source.load_product(ROOT_MEGAPIT, RELEASE).notes


def _write_packages(catalogue: MirrorCatalogue, folder: Path, as_zip: bool) -> None:
    """Lay the mirror's per-site files out as NEON download packages."""
    by_package: dict[str, list] = {}
    for (release, _), f in catalogue.files.items():
        domain = catalogue.domains.get(f.site, "D00")
        stamp = max(x.name.split(".")[-2] for x in catalogue.package_files(f.product, release, f.site, f.month))
        name = f"NEON.{domain}.{f.site}.{f.product}.{f.month}.basic.{stamp}.{release}"
        by_package.setdefault(f"{release}/{f.product}/{name}", []).append(f)
    for rel, files in by_package.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if as_zip:
            with zipfile.ZipFile(target.with_name(target.name + ".zip"), "w") as zf:
                for f in files:
                    zf.writestr(f.name, f.body)
        else:
            target.mkdir()
            for f in files:
                (target / f.name).write_bytes(f.body)


@pytest.mark.parametrize("as_zip", [False, True], ids=["folders", "zips"])
def test_neon_download_packages_equal_the_stacked_snapshot(
    tmp_path: Path, snapshot: Path, catalogue: MirrorCatalogue, as_zip: bool
) -> None:
    _write_packages(catalogue, tmp_path, as_zip)
    stacked, packaged = SnapshotSource(snapshot), SnapshotSource(tmp_path)
    for product in (ROOT_MEGAPIT, SOIL_MEGAPIT):
        a = stacked.load_product(product, RELEASE).tables
        b = packaged.load_product(product, RELEASE).tables
        assert a.keys() == b.keys()
        for name in a:
            # publicationDate is a stacking client's column (NEON's own files lack it); publication_date carries it
            left = a[name].frame.drop("source_file", "publicationDate", strict=False).sort("uid")
            right = b[name].frame.drop("source_file", "publicationDate", strict=False).sort("uid").select(left.columns)
            assert left.equals(right), name
            assert all(s.file.startswith("NEON.") for s in b[name].sources)


def test_zip_slip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.csv", "a\n1\n")
        zf.writestr("../../escaped.csv", "a\n1\n")
    with pytest.raises(UnsafeArchiveError, match=r"evil\.zip: entry '\.\./\.\./escaped\.csv' points outside"):
        package_files(archive)
    assert not (tmp_path / "escaped.csv").exists()


def test_absolute_zip_entry_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "abs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("/tmp/rootassets-abs-escape.csv", "a\n1\n")
    with pytest.raises(UnsafeArchiveError):
        package_files(archive)


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link.csv")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        package_files(archive)


def test_frames_have_unique_uids(snapshot: Path) -> None:
    load = SnapshotSource(snapshot).load_product(SOIL_MEGAPIT, RELEASE)
    for table in load.tables.values():
        assert table.frame["uid"].is_duplicated().sum() == 0
        assert table.frame.schema["publication_date"] == pl.Datetime("us", "UTC")
