"""The NEON data products and tables the platform ingests, and how to cite them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProductSpec:
    """A NEON data product and the tables taken from it."""

    code: str
    name: str
    tables: tuple[str, ...]
    optional_tables: tuple[str, ...] = ()
    package: str = "basic"  # NEON's download package: basic | expanded
    sites: tuple[str, ...] = ()  # the sites to take; empty: every site
    start: str | None = None  # first month (YYYY-MM) of site-month data to take; None: the earliest
    end: str | None = None  # last month (YYYY-MM); None: the latest

    def wants(self, site: str | None, month: str | None) -> bool:
        """Whether data of `site` in `month` is in this product's selection (None: not site- or month-bound)."""
        if site is not None and self.sites and site not in self.sites:
            return False
        if month is None:
            return True
        return (self.start is None or month >= self.start) and (self.end is None or month <= self.end)

    @property
    def all_tables(self) -> tuple[str, ...]:
        return self.tables + self.optional_tables

    def citation(self, release: str, doi: str | None = None) -> str:
        """NEON's recommended citation text for this product in `release`."""
        text = f"NEON (National Ecological Observatory Network). {self.name} ({self.code}), {release}."
        return f"{text} https://doi.org/{doi}" if doi else text


ROOT_MEGAPIT = ProductSpec(
    code="DP1.10066.001",
    name="Root biomass and chemistry, Megapit",
    tables=("mpr_perrootsample", "mpr_carbonNitrogen"),
    optional_tables=("mpr_perdepthincrement", "mpr_perpitprofile"),
)
SOIL_MEGAPIT = ProductSpec(
    code="DP1.00096.001",
    name="Soil physical and chemical properties, Megapit",
    tables=("mgp_permegapit", "mgp_perhorizon", "mgp_perbiogeosample", "mgp_perbulksample"),
)
PRODUCTS: dict[str, ProductSpec] = {p.code: p for p in (ROOT_MEGAPIT, SOIL_MEGAPIT)}

# Columns that identify the site of a row, in order of preference; for
# mpr_perrootsample the site is the first token of depthIncrementID.
SITE_COLUMNS: tuple[str, ...] = ("siteID", "depthIncrementID", "sampleID")
