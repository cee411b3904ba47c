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
