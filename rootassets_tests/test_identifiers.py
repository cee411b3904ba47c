"""NEON identifiers are validated before they reach a path, URL or statement."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rootassets.neon.identifiers import (
    InvalidIdentifierError,
    NeonFileName,
    parse_file_name,
    parse_package_name,
    release_sort_key,
    validate_release,
    validate_site,
)


@pytest.mark.parametrize("tag", ["RELEASE-2021", "RELEASE-2026", "PROVISIONAL"])
def test_release_tags_accepted(tag: str) -> None:
    assert validate_release(tag) == tag


@pytest.mark.parametrize(
    "tag",
    [
        "",
        "release-2021",
        "RELEASE-21",
        "RELEASE-2021/../x",
        "../RELEASE-2021",
        "RELEASE-2021'; drop",
        "RELEASE-2021\n",
        'PROVISIONAL"',
        None,
        2021,
    ],
)
def test_hostile_release_tags_refused(tag: object) -> None:
    with pytest.raises(InvalidIdentifierError, match="invalid NEON release tag"):
        validate_release(tag)


@given(st.text())
def test_no_accepted_tag_or_site_can_carry_path_or_quote(text: str) -> None:
    for validate in (validate_release, validate_site):
        try:
            value = validate(text)
        except InvalidIdentifierError:
            continue
        assert not set(value) & set("/\\.'\"; \n\x00")


def test_provisional_sorts_after_releases() -> None:
    tags = ["PROVISIONAL", "RELEASE-2023", "RELEASE-2021"]
    assert sorted(tags, key=release_sort_key) == ["RELEASE-2021", "RELEASE-2023", "PROVISIONAL"]


@given(
    site=st.from_regex(r"[A-Z]{4}", fullmatch=True),
    table=st.from_regex(r"[a-z][a-z_]{2,20}", fullmatch=True),
    month=st.one_of(st.none(), st.from_regex(r"20[0-9]{2}-(0[1-9]|1[0-2])", fullmatch=True)),
    stamp=st.from_regex(r"20[0-9]{6}T[0-9]{6}Z", fullmatch=True),
)
def test_file_names_round_trip(site: str, table: str, month: str | None, stamp: str) -> None:
    name = NeonFileName("D01", site, "DP1.10066.001", table, month, "basic", stamp)
    assert parse_file_name(name.render()) == name


def test_real_names_parse() -> None:
    f = parse_file_name("NEON.D01.BART.DP1.10066.001.mpr_perrootsample.2013-08.basic.20201217T015540Z.csv")
    assert f and f.site == "BART" and f.month == "2013-08" and not f.is_site_all
    v = parse_file_name("NEON.D01.BART.DP1.10066.001.variables.20201217T015540Z.csv")
    assert v and v.is_variables and not v.is_site_all
    s = parse_file_name("NEON.D01.BART.DP1.10066.001.mpr_perpitprofile.basic.20201217T015540Z.csv")
    assert s and s.is_site_all
    assert parse_file_name("NEON.D01.BART.DP1.10066.001.readme.20201217T015540Z.txt") is None
    p = parse_package_name("NEON.D01.BART.DP1.10066.001.2013-08.basic.20201217T015540Z.RELEASE-2021.zip")
    assert p and p.release == "RELEASE-2021" and p.site == "BART"
