"""The image tasks as a sweep config sees them: ``digits``, ``emnist`` (classification) and ``denoise``
(image-to-image)."""

from __future__ import annotations

import dataclasses

import pandas as pd

from proactiv.config import ConfigError, SweepConfig
from proactiv.tasks import digits
from proactiv.tasks.base import TaskData, pick_per_class
from proactiv.tasks.digits.denoise import cached_denoiser
from proactiv.tasks.digits.emnist import load_emnist
from proactiv.tasks.digits.model import cached_digits_cnn, load_digits_cnn

#: epochs of the CNN trained on the EMNIST training split when the config names no model (~2 × 125 k letters)
EMNIST_EPOCHS = 2
#: projection settings of image classifiers: projected inputs stay valid images
IMAGE_DEFAULTS = {"clamp": (0.0, 1.0)}
#: the denoiser's projection: MSE toward the clean image, done when the output is within 0.005 of it
#: (PSNR ≈ 23 dB; the denoiser reaches ≈ 0.004 on noise it was trained on)
DENOISE_DEFAULTS = {"loss": "mse", "cutoff": 0.005, "clamp": (0.0, 1.0)}


def load_digits(cfg: SweepConfig) -> TaskData:
    """scikit-learn's digits; the model is ``model`` (``path``: a CNN of ``proactiv digits train``; ONNX,
    TorchScript, factory) or the CNN trained and cached."""
    from proactiv.tasks.custom import load_model

    try:
        task = digits.load_task(
            cfg.data.instances_per_class, cfg.data.seed, cfg.data.split, cfg.data.image_size or 28
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if cfg.model is not None and cfg.model.path is not None:  # a CNN of `proactiv digits train --out DIR`
        try:
            return dataclasses.replace(task, model=load_digits_cnn(cfg.model.path))
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(f"model.path: {err}") from None
    return task if cfg.model is None else dataclasses.replace(task, model=load_model(cfg.model))


def load_emnist_task(cfg: SweepConfig) -> TaskData:
    """EMNIST from ``data.root``; the model is ``model`` (TorchScript / factory) or a CNN trained and cached."""
    from proactiv.tasks.custom import load_model

    if cfg.data.root is None:
        raise ConfigError("data.root: the emnist task needs the folder holding the EMNIST gzip IDX files")
    try:
        x, y, names = load_emnist(cfg.data.root, cfg.data.split, cfg.data.subset)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"data.root: {err}") from None
    if cfg.model is not None:
        model = load_model(cfg.model)
    else:
        try:
            train_x, train_y, _ = load_emnist(cfg.data.root, "train", cfg.data.subset)
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(f"data.root: no model given, so one is trained; {err}") from None
        model = cached_digits_cnn(train_x, train_y, 0, EMNIST_EPOCHS, len(names), progress=True)
    chosen = pick_per_class(y, cfg.data.instances_per_class, cfg.data.seed)
    return TaskData(
        model=model,
        inputs=x[chosen],
        labels=y[chosen],
        class_names=names,
        projection_defaults=IMAGE_DEFAULTS,
        description={
            "task": "emnist",
            "subset": cfg.data.subset,
            "split": cfg.data.split,
            "indices": chosen.tolist(),
        },
        pixel_range=1.0,
        input_kind="image",
    )


def load_denoise(cfg: SweepConfig) -> TaskData:
    """Digits as inputs and as targets: the denoiser should return the clean digit whatever the corruption."""

    size = cfg.data.image_size or 28
    try:
        splits = digits.digits_split(0, size)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if cfg.data.split not in splits:
        raise ConfigError(f"data.split={cfg.data.split!r}: the denoise task has splits {sorted(splits)}")
    if size != 28:
        raise ConfigError(f"data.image_size={size}: the denoiser is built for 28×28 digits")
    model = cached_denoiser(splits["train"][0], progress=True)
    x, y = splits[cfg.data.split]
    chosen = pick_per_class(y, cfg.data.instances_per_class, cfg.data.seed)
    clean = x[chosen]
    return TaskData(
        model=model,
        inputs=clean,
        labels=clean.clone(),
        metadata=pd.DataFrame({"digit": y[chosen].numpy()}),
        projection_defaults=DENOISE_DEFAULTS,
        description={"task": "denoise", "split": cfg.data.split, "indices": chosen.tolist()},
        pixel_range=1.0,
        input_kind="image",
    )


__all__ = ["load_denoise", "load_digits", "load_emnist_task"]
