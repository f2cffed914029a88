"""STAC access: catalogue configuration, retrying client, signing, cached searches."""
