"""Whole-tile embeddings from a frozen encoder: no masking, observations only, pooled per token.

A 256 px tile is encoded as a grid of ``crop_tokens × crop_tokens``-token crops (the sizes the model
was trained on), each crop with every present token of the observation modalities (S2, S1, Landsat)
marked ONLINE_ENCODER and nothing else: the maps are decode-only in the recipe and never enter the
encoder, so they can serve as labels. A token's embedding is the mean of the encoder's outputs over
its encoded (modality, period, bandset) slots — the reference's pooling for dense tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.batch import MaskValue
from olmoearth_model.data.reader import CorpusReader, Crop
from olmoearth_model.data.sampling import TILE_PIXELS
from olmoearth_model.masking import sample_token_missing
from olmoearth_model.nn.encoder import Encoder


@dataclass
class TileEmbedding:
    """Per-token embeddings of one sample's whole tile.

    Attributes:
        tokens: float32 ``[h, w, D]`` (``h = w = 256 / patch_size``; row 0 is the tile's north edge).
        valid: bool ``[h, w]``: some observation token was encoded there (else ``tokens`` is 0).
        periods: the period indices (0..11) encoded.
        modalities: the observation modalities given to the encoder.
    """

    tokens: np.ndarray
    valid: np.ndarray
    periods: tuple[int, ...]
    modalities: tuple[str, ...]


def open_encodable(*, encoder: Encoder, corpus: str, inputs: tuple[str, ...] | None = None) -> CorpusReader:
    """A reader of the observation modalities both ``corpus`` and ``encoder`` know, only ``inputs``
    among them when given (maps never enter the encoder, so they are not even read)."""
    known = set(encoder.patch_embed.embed.keys())
    specs = CorpusReader(corpus).specs
    names = [s.name for s in specs if not s.is_map and s.name in known]
    if inputs is not None:
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise ValueError(
                f"evaluation inputs {unknown} are not observation modalities of both corpus {corpus} "
                f"and the encoder; choose among {names}"
            )
        names = [n for n in names if n in inputs]
    if not names:
        raise ValueError(
            f"corpus {corpus} has no observation modality the encoder knows "
            f"(corpus: {[s.name for s in specs]}, encoder: {sorted(known)})"
        )
    return CorpusReader(corpus, modalities=names)


def best_periods(
    *, reader: CorpusReader, row: int, specs: tuple[ModalitySpec, ...], timesteps: int
) -> tuple[int, ...]:
    """The ``timesteps`` consecutive periods with the most present observations (earliest on ties)."""
    counts = np.zeros(12, dtype=int)
    for s in specs:
        if s.is_multitemporal:
            counts += reader.present[s.name][row].astype(int)
    t = min(timesteps, 12)
    windows = [int(counts[a : a + t].sum()) for a in range(12 - t + 1)]
    start = int(np.argmax(windows))
    return tuple(range(start, start + t))


@torch.no_grad()
def embed_tile(
    *,
    encoder: Encoder,
    reader: CorpusReader,
    row: int,
    patch_size: int,
    crop_tokens: int,
    timesteps: int,
    device: torch.device,
    crops_per_call: int = 16,
) -> TileEmbedding:
    """Embed corpus row ``row`` with the frozen ``encoder`` (call in eval mode; no RNG is used).

    Args:
        encoder: the online encoder (its own modalities decide which corpus modalities are read).
        reader: the corpus opened on observation modalities only (:func:`open_encodable`).
        row: the sample's corpus row.
        patch_size: token side in 10 m pixels; ``patch_size · crop_tokens`` must divide 256.
        crop_tokens: crop side in tokens.
        timesteps: periods encoded (:func:`best_periods`).
        device: where the encoder lives.
        crops_per_call: crops per encoder call (memory vs speed).
    """
    specs = reader.specs
    if any(s.is_map for s in specs):
        raise ValueError("embed_tile: maps are decode-only and never enter the encoder; use open_encodable")
    periods = best_periods(reader=reader, row=row, specs=specs, timesteps=timesteps)
    crop_px = patch_size * crop_tokens
    n = TILE_PIXELS // crop_px
    h = TILE_PIXELS // patch_size
    origins = [(i, j) for i in range(n) for j in range(n)]
    stamps = torch.from_numpy(reader.timestamps(row, periods)).to(device)
    dim = encoder.dim
    tokens = np.zeros((h, h, dim), dtype=np.float32)
    valid = np.zeros((h, h), dtype=bool)
    for first in range(0, len(origins), crops_per_call):
        chunk = origins[first : first + crops_per_call]
        data = {s.name: [] for s in specs}
        masks = {s.name: [] for s in specs}
        for i, j in chunk:
            pixels = reader.read(row, Crop(y0=i * crop_px, x0=j * crop_px, size=crop_px, periods=periods))
            missing = sample_token_missing(data=pixels, specs=specs, patch_size=patch_size)
            for s in specs:
                data[s.name].append(pixels[s.name])
                role = np.where(missing[s.name], MaskValue.MISSING, MaskValue.ONLINE_ENCODER)
                masks[s.name].append(role.astype(np.int8))
        data_t = {k: torch.from_numpy(np.stack(v)).to(device) for k, v in data.items()}
        masks_t = {k: torch.from_numpy(np.stack(v)).to(device) for k, v in masks.items()}
        out = encoder(
            data=data_t, masks=masks_t, timestamps=stamps.expand(len(chunk), -1, -1), patch_size=patch_size
        )
        total = torch.zeros(len(chunk), crop_tokens, crop_tokens, dim, device=device)
        count = torch.zeros(len(chunk), crop_tokens, crop_tokens, 1, device=device)
        for name, x in out.tokens.items():  # [B, h, w, T, S, D]
            enc = (masks_t[name] == MaskValue.ONLINE_ENCODER).to(x.dtype)[..., None]
            total += (x.float() * enc).sum(dim=(3, 4))
            count += enc.sum(dim=(3, 4))
        mean = (total / count.clamp(min=1)).cpu().numpy()
        ok = (count[..., 0] > 0).cpu().numpy()
        for k, (i, j) in enumerate(chunk):
            ys, xs = (
                slice(i * crop_tokens, (i + 1) * crop_tokens),
                slice(j * crop_tokens, (j + 1) * crop_tokens),
            )
            tokens[ys, xs] = mean[k]
            valid[ys, xs] = ok[k]
    return TileEmbedding(tokens=tokens, valid=valid, periods=periods, modalities=tuple(s.name for s in specs))
