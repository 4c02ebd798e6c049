"""Fine-tune a trained keyword model on a few labelled inputs without forgetting what it knew.

A few hundred new labels (chosen by :mod:`proactiv.monitor.labelling`) are too few to train on alone, so every
batch is half new inputs, half inputs replayed from the model's own training split under the training's own
augmentation (:func:`augmented_replay`; replayed clean, the demo model fell from 75 % to 61 % accuracy on noisy
clips in 32 steps at 1e-3; the augmentation is the trainer's of the day, so a change there changes the
fine-tuned models). Both halves are drawn class-balanced as training draws them (a pool of running speech is
mostly ``_unknown_``). The learning rate is constant and small, the batch-norm statistics stay frozen (a batch
of 50 windows is no estimate of the corpus's statistics), and every input is log-mel features computed once, so
a fine-tuning costs only its forward and backward passes.
"""

from __future__ import annotations

import copy
import math
import os

import torch
import torch.nn.functional as F

from proactiv.tasks.kws.models import KeywordModel
from proactiv.tasks.kws.train import UNKNOWN_WEIGHT, balanced_weights, training_augment


def draw_weights(labels: torch.Tensor, class_names: list[str]) -> torch.Tensor:
    """Class-balanced drawing weights, ``_unknown_`` drawn :data:`UNKNOWN_WEIGHT` times as often (as training)."""
    boost = {class_names.index("_unknown_"): UNKNOWN_WEIGHT} if "_unknown_" in class_names else {}
    return balanced_weights(labels, len(class_names), boost)


@torch.no_grad()
def augmented_replay(
    waves: torch.Tensor,
    labels: torch.Tensor,
    model: KeywordModel,
    data_root: str | os.PathLike,
    count: int = 2048,
    seed: int = 0,
    batch: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` training clips drawn as training draws them, each under one draw of the training's
    augmentation (the corpus's background noise, unknown words of the training split as neighbouring words),
    as features of ``model``'s frontend, with their labels: what replay shows a fine-tuned model so it keeps
    the robustness training gave it. Drawn once, so fine-tunings spend no time on augmentation."""
    augment = training_augment(waves, labels, model.class_names, data_root)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.multinomial(draw_weights(labels, model.class_names), count, replacement=True, generator=gen)
    frontend = model.frontend.cpu()
    feats = [augment.features(frontend(augment.waveforms(waves[part], gen)), frontend, gen)
             for part in idx.split(batch)]  # fmt: skip
    return torch.cat(feats), labels[idx]


def finetune(
    model: KeywordModel,
    feats: torch.Tensor,
    labels: torch.Tensor,
    replay_feats: torch.Tensor | None = None,
    replay_labels: torch.Tensor | None = None,
    *,
    epochs: int = 5,
    batch: int = 32,
    lr: float = 3e-4,
    weight_decay: float = 1e-3,
    label_smoothing: float = 0.05,
    seed: int = 0,
) -> KeywordModel:
    """A copy of ``model`` fine-tuned on ``feats`` (N, mels, frames) with ``labels`` (N,): ``epochs`` passes
    over them in batches of ``batch`` new inputs drawn class-balanced (:func:`draw_weights`), each with as
    many replayed ones drawn uniformly from ``replay_feats``/``replay_labels`` (:func:`augmented_replay`;
    none: new inputs only), AdamW at ``lr``, cross-entropy on the network's
    logits with ``label_smoothing`` (as in training; the decision offset is kept as it was). ``model`` is
    not changed; ``seed`` fixes the batches."""
    if len(feats) != len(labels) or len(feats) == 0:
        raise ValueError(
            f"fine-tune: {len(feats)} inputs and {len(labels)} labels; expected as many, at least one"
        )
    if replay_feats is not None and (replay_labels is None or len(replay_feats) != len(replay_labels)):
        raise ValueError("fine-tune: replay_feats without as many replay_labels")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fine-tune epochs = {epochs!r}: expected a positive integer")
    if not lr > 0:
        raise ValueError(f"fine-tune lr = {lr!r}: expected a positive learning rate")
    tuned = copy.deepcopy(model).cpu()
    net = tuned.net
    net.eval()  # batch-norm statistics frozen; gradients still flow
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    labels = torch.as_tensor(labels).long()
    weights = draw_weights(labels, tuned.class_names)
    steps = math.ceil(epochs * len(feats) / batch)
    for _ in range(steps):
        idx = torch.multinomial(weights, batch, replacement=True, generator=gen)
        x, y = feats[idx], labels[idx]
        if replay_feats is not None and len(replay_feats):
            back = torch.randint(len(replay_feats), (batch,), generator=gen)
            x, y = (
                torch.cat([x, replay_feats[back]]),
                torch.cat([y, torch.as_tensor(replay_labels)[back].long()]),
            )
        loss = F.cross_entropy(net(x), y, label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return tuned.eval()
