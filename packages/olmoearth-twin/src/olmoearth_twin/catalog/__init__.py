"""Generated catalogues for the twin (Sentinel-2 L2A), cached on disk by a hash of their inputs."""
