"""Harmonized assets: METHOD.md sections 1 (root depth profiles) and 3 (soil on the root grid), from the registry."""

from rootassets.defs.steps import assets_of_group

harmonized_assets = assets_of_group("harmonized")
