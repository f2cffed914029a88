"""Build what a run needs from its config sections: device, model, loader settings, machine fit."""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import replace

import torch

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.data.dataset import LoaderConfig
from olmoearth_model.data.reader import CorpusReader
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import ModelConfig, get_size
from olmoearth_model.train.config import ConfigError, DataConfig, MaskingConfig, ModelSection, TrainConfig
from olmoearth_model.train.distributed import DistEnv

log = logging.getLogger(__name__)

#: Largest global batch the CPU fallback accepts: beyond it one optimiser step takes minutes.
CPU_MAX_GLOBAL_BATCH = 64


def pick_device(name: str, *, local_rank: int = 0) -> torch.device:
    """``auto``: this rank's GPU when CUDA is available, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    return torch.device(name)


def build_model(section: ModelSection, *, specs: tuple[ModalitySpec, ...]) -> LatentMIM:
    """The one way to build a training model: ``section``'s size/target for the modality set ``specs``,
    initialised from ``section.init_seed`` (the global torch RNG is reseeded)."""
    torch.manual_seed(section.init_seed)
    config = ModelConfig(
        size=get_size(section.size),
        modalities=tuple(specs),
        encoder_drop_path=section.encoder_drop_path,
        target=section.target,
        ema_decay=section.ema_decay,
    )
    return LatentMIM(config=config)


def build_model_for_corpus(config: TrainConfig) -> LatentMIM:
    """:func:`build_model` for the modality set of ``config.data.corpus``."""
    return build_model(config.model, specs=CorpusReader(config.data.corpus).specs)


def loader_config(data: DataConfig, *, masking: MaskingConfig) -> LoaderConfig:
    """The loader's settings; ``split`` is passed only to a loader that knows it (older ones draw all)."""
    kwargs = {}
    if "split" in inspect.signature(LoaderConfig).parameters:
        kwargs["split"] = data.split
    elif data.split is not None:
        log.warning("this loader has no splits: data.split=%r ignored, training on every sample", data.split)
    return LoaderConfig(
        corpus=data.corpus,
        global_batch=data.global_batch,
        seed=data.seed,
        masking=masking.strategy,
        num_workers=data.num_workers,
        token_budget=data.token_budget,
        patch_sizes=data.patch_sizes,
        crop_tokens=data.crop_tokens,
        **kwargs,
    )


def fit_to_machine(config: TrainConfig, *, device: torch.device, env: DistEnv) -> TrainConfig:
    """The CPU fallback: loader workers capped to the cores, a recipe-sized batch refused in one line.

    On CPU each rank gets at most ``cores / ranks − 1`` loader workers (the training step needs a
    core); a global batch above :data:`CPU_MAX_GLOBAL_BATCH` raises :class:`ConfigError` naming the
    override to pass. On any device, a warm-up longer than the run is warned about (lr would never
    reach ``optim.lr``). Returns the config to train with (unchanged on a GPU).
    """
    sched = config.schedule
    if sched.warmup_steps >= sched.max_steps:
        log.warning(
            "schedule.warmup_steps=%d ≥ schedule.max_steps=%d: the lr only reaches %.2g of optim.lr=%g; "
            "shorten the warm-up (e.g. schedule.warmup_steps=%d)",
            sched.warmup_steps, sched.max_steps, sched.max_steps / max(1, sched.warmup_steps),
            config.optim.lr, max(1, sched.max_steps // 10),
        )  # fmt: skip
    if device.type != "cpu":
        return config
    data = config.data
    if data.global_batch > CPU_MAX_GLOBAL_BATCH:
        raise ConfigError(
            f"data.global_batch={data.global_batch} is a GPU batch: on CPU one step would take minutes; "
            f"pass e.g. data.global_batch=8 data.microbatch=8 (at most {CPU_MAX_GLOBAL_BATCH} on CPU)"
        )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(0, cores // env.world_size - 1)
    if data.num_workers > workers:
        log.warning(
            "CPU with %d core(s) for %d rank(s): data.num_workers %d -> %d", cores, env.world_size,
            data.num_workers, workers,
        )  # fmt: skip
        config = replace(config, data=replace(data, num_workers=workers))
    return config


def unsharded_model(model_config: ModelConfig, weights: dict[str, torch.Tensor]) -> LatentMIM:
    """A plain CPU ``LatentMIM`` holding ``weights`` (a full state dict, e.g. gathered from FSDP2 shards)."""
    with torch.device("meta"):  # no random init: every tensor is replaced below
        plain = LatentMIM(config=model_config)
    plain.load_state_dict({k: v.detach().cpu() for k, v in weights.items()}, strict=True, assign=True)
    return plain
