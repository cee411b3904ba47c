"""The asset graph as a reviewed file: every asset's key, deps, group, code version and description.

As dagster-open-platform's `test_defs.py`: a change to the graph (a new dep, a renamed asset, a
science edit that changes a derived code version) shows in review as a diff of
`snapshots/asset_graph.json`. Regenerate it with `ROOTASSETS_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest
rootassets_tests/test_defs_snapshot.py` and commit it with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rootassets.definitions import defs

SNAPSHOT = Path(__file__).with_name("snapshots") / "asset_graph.json"


def graph_snapshot() -> dict[str, dict[str, object]]:
    graph = defs.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        out[key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "group": node.group_name,
            "code_version": node.code_version,
            "kind": "observable source" if node.is_observable else "materializable",
            "description": (node.description or "").strip(),
            "checks": sorted(c.name for c in graph.asset_check_keys if c.asset_key == key),
        }
    return out


def test_the_asset_graph_matches_its_reviewed_snapshot() -> None:
    current = graph_snapshot()
    if os.environ.get("ROOTASSETS_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(SNAPSHOT.read_text())
    changed = sorted(k for k in set(current) | set(recorded) if current.get(k) != recorded.get(k))
    assert not changed, f"the asset graph changed for {changed}: review, then regenerate {SNAPSHOT.name}"


def readme_stages(readme: Path = Path(__file__).parents[1] / "README.md") -> list[str]:
    """The stages of the README's "What it does" table, in its order."""
    section = readme.read_text().split("## What it does", 1)[1].lstrip("\n")
    table = section.split("\n\n", 1)[0].splitlines()
    assert table[0].startswith("| stage |"), "the README's stage table moved"
    return [row.split("|")[1].strip() for row in table[2:]]


def test_the_ui_groups_are_the_readmes_stages() -> None:
    """The lineage's groups are the stages the README names (a declared product's `neon_<dpID>` groups aside,
    which the README describes where products are added)."""
    groups = {node.group_name for node in defs.resolve_asset_graph().asset_nodes}
    assert groups - set(readme_stages()) == set(), "a group the README's stage table does not name"
    assert set(readme_stages()) - groups == set(), "a stage of the README that is no group in the UI"
