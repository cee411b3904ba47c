"""The release partitions every release-scoped asset shares."""

from dagster import DynamicPartitionsDefinition

NEON_RELEASE_PARTITIONS = "neon_release"

neon_release = DynamicPartitionsDefinition(name=NEON_RELEASE_PARTITIONS)
