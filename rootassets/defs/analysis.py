"""Analysis assets: METHOD.md sections 2 and 4-7, every one a step of the registry (`rootassets.science.steps`),
the optional bootstrap included (group `analysis_optional`, not in main_job)."""

from rootassets.defs.steps import assets_of_group

analysis_assets = [*assets_of_group("analysis"), *assets_of_group("analysis_optional")]
