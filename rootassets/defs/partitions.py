"""Partitions: every release-scoped asset shares the release partitions; the per-site soil-water assets are
partitioned by release and site, so one site's refresh or failure never touches another's.

Downstream release-partitioned assets depend on every site of their release: Dagster infers that mapping
(`MultiToSingleDimensionPartitionMapping` on the `release` dimension) from the shared release partitions.
"""

from dagster import DynamicPartitionsDefinition, MultiPartitionKey, MultiPartitionsDefinition

NEON_RELEASE_PARTITIONS = "neon_release"
NEON_SITE_PARTITIONS = "neon_site"
RELEASE_DIMENSION, SITE_DIMENSION = "release", "site"

neon_release = DynamicPartitionsDefinition(name=NEON_RELEASE_PARTITIONS)
neon_site = DynamicPartitionsDefinition(name=NEON_SITE_PARTITIONS)
release_site = MultiPartitionsDefinition({RELEASE_DIMENSION: neon_release, SITE_DIMENSION: neon_site})


def release_site_key(release: str, site: str) -> MultiPartitionKey:
    """The partition of one site in one release."""
    return MultiPartitionKey({RELEASE_DIMENSION: release, SITE_DIMENSION: site})


def release_and_site(partition_key: str | MultiPartitionKey) -> tuple[str, str]:
    """(release, site) of a release x site partition key (as a run or a context gives it: `site|release`)."""
    if isinstance(partition_key, MultiPartitionKey):
        dims = partition_key.keys_by_dimension
    else:
        dims = release_site.get_partition_key_from_str(partition_key).keys_by_dimension
    return dims[RELEASE_DIMENSION], dims[SITE_DIMENSION]
