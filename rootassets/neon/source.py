"""What every NEON data source offers: its releases and stacked product tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rootassets.neon.documents import ProductDocuments
from rootassets.neon.products import ProductSpec
from rootassets.neon.stacking import StackedTable


@dataclass
class ProductLoad:
    """The stacked tables of one product in one release, with how to cite them."""

    product: ProductSpec
    release: str
    tables: dict[str, StackedTable]
    doi: str | None = None
    origin: str = ""
    notes: list[str] = field(default_factory=list)
    documents: ProductDocuments = field(default_factory=ProductDocuments)
    published: bool = True  # False: the source has no data of this product in this release

    @classmethod
    def unpublished(cls, product: ProductSpec, release: str, origin: str, why: str) -> ProductLoad:
        """The load of a product the source has no data of in `release` (`why` says so): its tables are written
        empty."""
        return cls(
            product=product,
            release=release,
            tables={},
            origin=origin,
            notes=[f"{product.code}: {why}; its tables are written empty"],
            published=False,
        )

    @property
    def citation(self) -> str:
        return self.product.citation(self.release, self.doi)


class NeonSource(Protocol):
    """A place NEON data come from: the live API (or a mirror) or a local snapshot."""

    def describe(self) -> str:
        """Where the data come from, for metadata and messages (never a secret)."""
        ...

    def releases(self) -> list[str]:
        """The release tags this source offers, oldest first."""
        ...

    def release_info(self) -> dict[str, str]:
        """{release tag: generation date} for the releases holding every product the platform uses."""
        ...

    def fingerprint(self, product: ProductSpec, release: str) -> str | None:
        """A cheap version of the product's files that changes when they do; None if unknown."""
        ...

    def load_product(self, product: ProductSpec, release: str) -> ProductLoad:
        """Stack every table of `product` in `release` the source has."""
        ...

    def documents(self, product: ProductSpec, release: str) -> tuple[ProductDocuments, str | None]:
        """NEON's documentation of `product` in `release` (variables, readme, issue log) and its DOI."""
        ...
