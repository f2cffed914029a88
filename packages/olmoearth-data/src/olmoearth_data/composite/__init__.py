"""Compositing: pick the items that cover a tile, load them into the tile grid, merge first-valid."""
