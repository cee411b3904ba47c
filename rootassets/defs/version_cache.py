"""Derived code versions remembered between processes.

An asset's code version is derived by walking the source of every function, class and constant it reaches
(`rootassets.science.registry`). The walk took ~0.9 s of every process that loads the definitions (the CLI,
the UI's run workers, `dg`), and it imported matplotlib to follow the figures' lazy imports. Its result depends
only on the package's source and on the installed libraries (a constant enters by its repr), so the versions
are kept in a file named by a fingerprint of both, under `~/.cache/rootassets/code-versions/` (or
`$XDG_CACHE_HOME/rootassets/code-versions/`). A process whose fingerprint has a file reads its versions from it.
An edited source file, or another installed library version, is another fingerprint: a version is never read
from another state of the code. A cache that cannot be read or written is not an error: the versions are
derived as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path

import rootassets
from rootassets.science.registry import Step, code_version, module_version

FILES_KEPT = 8  # fingerprints kept (a few checkouts or library sets); the oldest file beyond them is removed


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rootassets" / "code-versions"


@functools.cache
def fingerprint() -> str:
    """The package's Python source (every file, by path and content), the interpreter, and the installed
    distributions with their versions (their `.dist-info` folder names)."""
    package = Path(rootassets.__file__).resolve().parent
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(f"\0{path.relative_to(package).as_posix()}\0".encode())
        digest.update(path.read_bytes())
    paths = sysconfig.get_paths()
    for site in sorted({paths["purelib"], paths["platlib"]}):
        try:
            installed = sorted(n for n in os.listdir(site) if n.endswith(".dist-info"))
        except OSError:
            installed = []
        digest.update("\0".join([site, *installed]).encode())
    return digest.hexdigest()[:24]


def _file() -> Path:
    """This fingerprint's file (OSError when there is no home folder to put it under)."""
    try:
        return cache_folder() / f"{fingerprint()}.json"
    except RuntimeError as error:  # Path.home() with neither HOME nor a password entry
        raise OSError(str(error)) from error


@functools.cache
def _remembered() -> dict[str, str]:
    """This fingerprint's versions on disk ({} when there are none or the file is not a map of strings)."""
    try:
        loaded = json.loads(_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(loaded, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()):
        return {}
    return loaded


def module_code_version(module_name: str) -> str:
    """`registry.module_version` of a module, remembered (call it right after the module's imports)."""
    return remembered_version(f"module {module_name}", lambda: module_version(module_name))


def step_code_version(step: Step) -> str:
    """`registry.code_version` of a registry step, remembered."""
    return remembered_version(f"step {step.name}", lambda: code_version(step))


def remembered_version(name: str, derive: Callable[[], str]) -> str:
    """`name`'s version from this fingerprint's file, or `derive()` (then written to the file)."""
    versions = _remembered()
    known = versions.get(name)
    if known is not None:
        return known
    versions[name] = derived = derive()
    _store(versions)
    return derived


def _store(versions: dict[str, str]) -> None:
    """Write the versions (merged with what another process may have written meanwhile) in one replace, so a
    reader sees the whole old file or the whole new one; remove the oldest fingerprints' files beyond
    FILES_KEPT."""
    try:
        target = _file()
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            on_disk = json.loads(target.read_text())
            if isinstance(on_disk, dict):
                versions.update({k: v for k, v in on_disk.items() if isinstance(k, str) and isinstance(v, str)})
        except (OSError, ValueError):
            pass
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".versions-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(versions, out, sort_keys=True)
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
        files = sorted(target.parent.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[FILES_KEPT:]:
            old.unlink(missing_ok=True)
    except OSError:
        return
