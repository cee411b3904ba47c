"""Unzip NEON packages without letting an entry escape its folder."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from rootassets.neon.errors import NeonDataError, UnsafeArchiveError


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract `archive` into `target`; refuse absolute paths, `..` and links."""
    target = target.resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise NeonDataError(f"{archive.name}: not a readable zip archive ({exc})") from exc
    written: list[Path] = []
    with zf:
        for info in zf.infolist():
            destination = (target / info.filename).resolve()
            if not destination.is_relative_to(target) or Path(info.filename).is_absolute():
                raise UnsafeArchiveError(f"{archive.name}: entry {info.filename!r} would be written outside {target}")
            if _is_symlink(info):
                raise UnsafeArchiveError(f"{archive.name}: entry {info.filename!r} is a symbolic link")
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, destination.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            written.append(destination)
    return written


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000
