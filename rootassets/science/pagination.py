"""How a figure with a panel per site is split into pages.

Kept apart from `figures` (which imports matplotlib) so that counting a figure's pages, as the job process
does before it hands the drawing to the workers, does not import matplotlib there.
"""

from __future__ import annotations

import polars as pl

PANELS_PER_PAGE = 64  # a figure with a panel per site is drawn in pages of 8 x 8 panels (the paper's 44 fit one)


def pages_of(sites: list[str]) -> list[list[str]]:
    """`sites` in pages of at most PANELS_PER_PAGE, in order (no sites: one empty page)."""
    return [sites[i : i + PANELS_PER_PAGE] for i in range(0, len(sites), PANELS_PER_PAGE)] or [[]]


def panel_pages(sites: pl.Series) -> int:
    """How many pages a figure with a panel per site takes for `sites`."""
    return len(pages_of(sites.unique().to_list()))
