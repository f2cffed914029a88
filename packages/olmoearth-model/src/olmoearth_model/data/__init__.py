"""Streaming the corpus into training batches (docs/batch-schema.md)."""
