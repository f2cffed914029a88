"""The Zarr v3 corpus cube: layout (metadata created up front) and shard-owning writes."""
