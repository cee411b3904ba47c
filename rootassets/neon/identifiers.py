"""Strict patterns for the NEON identifiers that reach paths, URLs and SQL.

Anything that comes from outside (the API, a folder name, the command line) is
checked here before it is used, so that `../` or a quote can never travel
into a file path or a statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RELEASE_PATTERN = re.compile(r"^(RELEASE-20[0-9]{2}|PROVISIONAL)$")
SITE_PATTERN = re.compile(r"^[A-Z]{4}$")
DOMAIN_PATTERN = re.compile(r"^D[0-9]{2}$")
PRODUCT_PATTERN = re.compile(r"^DP[0-4]\.[0-9]{5}\.[0-9]{3}$")
MONTH_PATTERN = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
TABLE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
PUBLICATION_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


class InvalidIdentifierError(ValueError):
    """An identifier from outside did not match NEON's pattern."""


def _check(kind: str, value: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidIdentifierError(f"invalid NEON {kind} {value!r}: expected to match {pattern.pattern}")
    return value


def validate_release(tag: object) -> str:
    """Return `tag` if it is a NEON release tag (RELEASE-YYYY or PROVISIONAL)."""
    return _check("release tag", tag, RELEASE_PATTERN)


def validate_site(code: object) -> str:
    return _check("site code", code, SITE_PATTERN)


def validate_domain(code: object) -> str:
    return _check("domain code", code, DOMAIN_PATTERN)


def validate_product(code: object) -> str:
    return _check("product code", code, PRODUCT_PATTERN)


def validate_month(month: object) -> str:
    return _check("month", month, MONTH_PATTERN)


def validate_table(name: object) -> str:
    return _check("table name", name, TABLE_PATTERN)


def release_sort_key(tag: str) -> tuple[int, str]:
    """Order releases by year, with PROVISIONAL after every numbered release."""
    return (1, tag) if tag == "PROVISIONAL" else (0, tag)


# NEON data file:  NEON.D01.BART.DP1.10066.001.mpr_perrootsample.2013-08.basic.20201217T015540Z.csv
# site-all table:  NEON.D01.BART.DP1.10066.001.mpr_perpitprofile.basic.20201217T015540Z.csv
# variables file:  NEON.D01.BART.DP1.10066.001.variables.20201217T015540Z.csv
_FILE_RE = re.compile(
    r"^NEON\.(?P<domain>D[0-9]{2})\.(?P<site>[A-Z]{4})\.(?P<product>DP[0-4]\.[0-9]{5}\.[0-9]{3})\."
    r"(?P<table>[A-Za-z][A-Za-z0-9_]*)\."
    r"(?:(?P<month>[0-9]{4}-[0-9]{2})\.)?(?:(?P<package>basic|expanded)\.)?"
    r"(?P<publication>[0-9]{8}T[0-9]{6}Z)\.csv$"
)
# package: NEON.D01.BART.DP1.10066.001.2013-08.basic.20201217T015540Z.RELEASE-2021(.zip)
_PACKAGE_RE = re.compile(
    r"^NEON\.(?P<domain>D[0-9]{2})\.(?P<site>[A-Z]{4})\.(?P<product>DP[0-4]\.[0-9]{5}\.[0-9]{3})\."
    r"(?P<month>[0-9]{4}-[0-9]{2})\.(?P<package>basic|expanded)\.(?P<publication>[0-9]{8}T[0-9]{6}Z)"
    r"\.(?P<release>RELEASE-20[0-9]{2}|PROVISIONAL)(?:\.zip)?$"
)


@dataclass(frozen=True)
class NeonFileName:
    """The parts of a NEON data file name."""

    domain: str
    site: str
    product: str
    table: str
    month: str | None
    package: str | None
    publication: str

    @property
    def is_variables(self) -> bool:
        return self.table == "variables"

    @property
    def is_site_all(self) -> bool:
        """Site-all tables carry no month: every package of a site repeats them."""
        return self.month is None and not self.is_variables

    def render(self) -> str:
        parts = ["NEON", self.domain, self.site, self.product, self.table]
        if self.month:
            parts.append(self.month)
        if self.package:
            parts.append(self.package)
        return ".".join(parts + [self.publication, "csv"])


def parse_file_name(name: str) -> NeonFileName | None:
    """Parse a NEON data file name; None if it is not one (readme, xml, ...)."""
    m = _FILE_RE.fullmatch(name)
    if not m:
        return None
    return NeonFileName(**m.groupdict())


@dataclass(frozen=True)
class NeonPackageName:
    domain: str
    site: str
    product: str
    month: str
    package: str
    publication: str
    release: str


def parse_package_name(name: str) -> NeonPackageName | None:
    """Parse a NEON download package folder or zip name; None if it is not one."""
    m = _PACKAGE_RE.fullmatch(name)
    if not m:
        return None
    return NeonPackageName(**m.groupdict())
