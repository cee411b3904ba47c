"""The HTML report is the Markdown report as one self-contained page."""

from __future__ import annotations

from rootassets.science.report import image_links, report_html


def test_the_html_report_renders_tables_and_inlines_every_figure() -> None:
    text = (
        "# Title\n\n| site | d2_cm |\n|---|---|\n| ABBY | 95.0 |\n\n"
        "### figure_1\n\n![figure_1](../../figures/RELEASE-2021/figure_1.png)\n\n"
        "![missing](../../figures/RELEASE-2021/missing.png)\n"
    )
    links = image_links(text)
    assert links == ["../../figures/RELEASE-2021/figure_1.png", "../../figures/RELEASE-2021/missing.png"]
    page = report_html(text, "RELEASE-2021", {links[0]: b"\x89PNG fake"})
    assert page.startswith("<!DOCTYPE html>") and "<title>Root bimodality at NEON megapit sites, RELEASE-2021" in page
    assert "<td>ABBY</td>" in page and "<th>d2_cm</th>" in page
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in page
    assert 'src="../../figures/RELEASE-2021/missing.png"' in page  # a figure that does not exist stays a link
