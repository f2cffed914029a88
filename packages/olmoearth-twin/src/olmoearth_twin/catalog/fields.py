"""Array helpers for synthesis: smooth random fields and exact resolution changes (numpy only)."""

from __future__ import annotations

import numpy as np


def upsample_bilinear(*, grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a coarse float grid ``[h, w]`` to ``shape`` (pixel-centre aligned), float32."""
    h, w = grid.shape
    ys = np.clip((np.arange(shape[0]) + 0.5) * h / shape[0] - 0.5, 0, h - 1)
    xs = np.clip((np.arange(shape[1]) + 0.5) * w / shape[1] - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x1] * wx
    bottom = grid[y1][:, x0] * (1 - wx) + grid[y1][:, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def smooth_field(
    *, rng: np.random.Generator, shape: tuple[int, int], scale_px: float, octaves: int = 4
) -> np.ndarray:
    """Fractal value noise ``[H, W]`` float32 rescaled to [0, 1].

    Octave k is Gaussian noise on a grid of spacing ``scale_px / 2**k`` pixels, bilinearly upsampled,
    with amplitude ``0.5**k``: blobs of about ``scale_px`` with ragged edges (cloud-like).
    """
    total = np.zeros(shape, dtype=np.float32)
    for k in range(octaves):
        step = max(scale_px / 2**k, 2.0)
        coarse = rng.standard_normal((int(np.ceil(shape[0] / step)) + 2, int(np.ceil(shape[1] / step)) + 2))
        total += (0.5**k) * upsample_bilinear(grid=coarse, shape=shape)
    lo, hi = float(total.min()), float(total.max())
    return ((total - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def block_mean(*, a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over non-overlapping ``factor × factor`` blocks; ``a``'s shape must divide exactly."""
    if factor == 1:
        return a.astype(np.float32)
    h, w = a.shape
    if h % factor or w % factor:
        raise ValueError(f"shape {a.shape} is not a multiple of {factor}")
    return a.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3), dtype=np.float32)


def box_mean(*, a: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the ``(2·radius + 1)²`` window around each pixel of ``a`` ``[H, W]`` (the window clipped
    at the edges), float32; an integral image, so the cost does not grow with ``radius``."""
    h, w = a.shape
    integral = np.zeros((h + 1, w + 1), dtype=np.float64)
    integral[1:, 1:] = np.cumsum(np.cumsum(a, axis=0, dtype=np.float64), axis=1)
    r0, r1 = np.clip(np.arange(h) - radius, 0, h), np.clip(np.arange(h) + radius + 1, 0, h)
    c0, c1 = np.clip(np.arange(w) - radius, 0, w), np.clip(np.arange(w) + radius + 1, 0, w)
    total = integral[r1][:, c1] - integral[r0][:, c1] - integral[r1][:, c0] + integral[r0][:, c0]
    count = (r1 - r0)[:, None] * (c1 - c0)[None, :]
    return (total / count).astype(np.float32)


def repeat_up(*, a: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling by an integer factor (each pixel becomes a block)."""
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)


def shift(*, a: np.ndarray, dy: int, dx: int, fill: bool | float = False) -> np.ndarray:
    """``a`` moved by (dy, dx) pixels (positive = down/right), uncovered pixels set to ``fill``."""
    out = np.full_like(a, fill)
    h, w = a.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    if abs(dy) < h and abs(dx) < w:
        out[yd, xd] = a[ys, xs]
    return out
