"""Robust training strategies side by side on a demo (issue 29 part 1): one table per task.

For the digits or the KWS demo: train the plain model (``none``), sweep it with the demo's config, then train one
model per ``--strategy`` (``augment`` and ``consistency`` toward the plain model's run, ``adversarial`` on its
own), sweep each with the same config and compute the radius, breakpoints, attributions and slices steps. Per
strategy: clean test accuracy, accuracy on the plain run's worst slice (the same records), test accuracy under
L2 PGD at two ε (``metrics.json``), median radius found and certified (L2, the radius step), the breakpoints of
the whole run, the share of attribution mass on the object (inside the word's or the strokes' support, from
the attributions step's ``attr.outside_x``) and the training time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_robust_training.py --task digits [--out DIR]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_robust_training.py --task kws --epochs 20 [--out DIR]

Trainings are cached (the train commands' own keys) and sweeps resume, so a second call only prints. The table
is written to ``DIR/<task>-table.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from proactiv.analysis import analyze
from proactiv.augment_plan import register_planner
from proactiv.config import ModelSpec, load_config
from proactiv.mitigation import augmentation_plan, compare
from proactiv.sweep import sweep_config

STRATEGIES = ("none", "augment", "adversarial", "consistency")
STEPS = ["radius", "breakpoints", "attributions", "slices"]


def train_digits(out: Path, strategy: str, run: Path | None, epochs: int) -> None:
    from proactiv.tasks.digits.cli import train

    train(out=out, augment_from=run, epochs=epochs, seed=0, image_size=28, force=False,
          strategy="augment" if strategy == "none" else strategy, epsilon=None, pgd_steps=5, norm="l2", beta=1.0)  # fmt: skip


def train_kws(out: Path, strategy: str, run: Path | None, epochs: int, data: Path = Path("data/kws")) -> None:
    from proactiv.tasks.kws.cli import train
    from proactiv.tasks.kws.models import DEFAULT_ARCH

    train(data=data, out=out, arch=DEFAULT_ARCH, seed=0, epochs=epochs, time_budget=None, threads=1, exclude_engine=None,
          members=1, augment_from=run, force=False, progress=False, strategy="augment" if strategy == "none" else strategy,
          epsilon=None, pgd_steps=3, norm="l2", beta=1.0)  # fmt: skip


def kws_pgd(model_dir: Path, data: Path = Path("data/kws")) -> dict:
    """The test split's accuracy under PGD for a KWS model whose metrics predate the ``pgd`` entry."""
    from proactiv.robust_training import pgd_accuracy
    from proactiv.tasks.kws.inference import compute_features
    from proactiv.tasks.kws.models import load_model
    from proactiv.tasks.kws.train import PGD_EPSILONS, load_corpus

    model = load_model(model_dir / "model.pt")
    test = load_corpus(data)[0]["test"]
    return pgd_accuracy(model, compute_features(model.frontend, test.waves), test.labels, PGD_EPSILONS)


def digits_batch(model_dir: Path) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The plain digits CNN and a batch of 64 test images with their labels (for the cost of a step)."""
    from proactiv.tasks.digits import digits_split
    from proactiv.tasks.digits.model import load_digits_cnn

    x, y = digits_split(0, 28)["test"]
    return load_digits_cnn(model_dir), x[:64], y[:64]


def kws_batch(model_dir: Path, data: Path = Path("data/kws")) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The plain KWS network and the features of 64 test clips with their labels (for the cost of a step)."""
    from proactiv.tasks.kws.inference import compute_features
    from proactiv.tasks.kws.models import load_model
    from proactiv.tasks.kws.train import load_corpus

    model = load_model(model_dir / "model.pt")
    test = load_corpus(data)[0]["test"]
    return model.net, compute_features(model.frontend, test.waves[:64]), test.labels[:64]


TASKS = {
    "digits": {"config": Path("examples/digits_demo.yaml"), "train": train_digits, "epochs": 30, "pgd": None,
               "batch": digits_batch, "pgd_steps": 5, "epsilon": 1.0},
    "kws": {"config": Path("examples/kws_demo.yaml"), "train": train_kws, "epochs": 45, "pgd": kws_pgd,
            "batch": kws_batch, "pgd_steps": 3, "epsilon": 8.0},
}  # fmt: skip


def step_costs(task: dict, model_dir: Path, rounds: int = 5, steps: int = 10) -> dict[str, float]:
    """Seconds per training step (loss, backward) of each strategy on one batch of model inputs, the median of
    ``rounds`` interleaved rounds: the strategies' own cost, apart from data loading and augmentation, which
    the whole trainings' times mix with the machine's load."""
    import statistics

    import torch.nn.functional as F

    from proactiv.robust_training import TrainingStrategy

    net, x, y = task["batch"](model_dir)
    net.train()
    strategies = {"augment": TrainingStrategy(), "adversarial": TrainingStrategy(
        "adversarial", epsilon=task["epsilon"], steps=task["pgd_steps"]), "consistency": TrainingStrategy("consistency")}
    pair, gen = (x, x + 0.1 * torch.randn_like(x)), torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {name: [] for name in strategies}
    for _ in range(rounds):
        for name, strategy in strategies.items():
            started = time.perf_counter()
            for _ in range(steps):
                net.zero_grad()
                strategy.loss(net, x, y, F.cross_entropy, pair, gen).backward()
            times[name].append((time.perf_counter() - started) / steps)
    return {name: statistics.median(t) for name, t in times.items()}


def sweep_with(config: Path, model: Path, out: Path):
    """The demo config's sweep with its model replaced (resumed when ``out`` holds part of it)."""
    cfg = load_config(config)
    cfg = cfg.model_copy(update={"model": ModelSpec(path=model.resolve())})
    return sweep_config(cfg, out, resume=out.exists(), progress=False)


def breakpoints_text(run) -> str:
    """The whole run's breakpoints (scope ``all``): each transform's marginal one (``column side value``, or
    none), then how many curves at fixed values of the other parameters break."""
    table = pd.read_parquet(run.analysis_dir / "breakpoints.parquet")
    table = table[table.scope == "all"]
    marginal = table[table.condition.fillna("") == ""]
    found = [f"{r.column} {r.side} {r.value:g}" for r in marginal.itertuples() if pd.notna(r.value)]
    conditional = table[table.condition.fillna("") != ""]
    broken = int(conditional.value.notna().sum())
    return f"{'; '.join(found) or 'no marginal breakpoint'} ({broken} conditional)"


def row(name: str, model: Path, run, plain_run, pgd) -> dict:
    metrics = json.loads((model / "metrics.json").read_text())
    if "pgd" not in metrics:
        metrics["pgd"] = pgd(model)
    radius = pd.read_parquet(run.analysis_dir / "radius.parquet")
    attributions = pd.read_parquet(run.analysis_dir / "attributions.parquet")
    worst = compare(plain_run, run, n_slices=1).iloc[0]
    out = {
        "strategy": name,
        "clean accuracy": metrics["test"]["accuracy"],
        "worst slice": worst.after,
        **{f"PGD ε {eps}": share for eps, share in metrics["pgd"]["accuracy"].items()},
        "radius found": radius.radius_l2.median(),
        "radius certified": radius.certified_l2.median() if "certified_l2" in radius else float("nan"),
        "on object": 1 - attributions["attr.outside_x"].median(),
        "train s": metrics.get("train_seconds", float("nan")),
        "breakpoints": breakpoints_text(run),
        "worst slice is": worst.measure,
    }
    return out


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table: shares and radii to three decimals, seconds whole."""

    def cell(column: str, value) -> str:
        if isinstance(value, str):
            return value
        return "–" if pd.isna(value) else f"{value:.0f}" if column.endswith(" s") else f"{value:.3f}"

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in r.items()) + " |" for r in table.to_dict("records")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-robust-training"))
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the demo's)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    register_planner(augmentation_plan)  # what the `proactiv` command registers for --augment-from
    task = TASKS[args.task]
    epochs = args.epochs or task["epochs"]
    models, runs = args.out / "models", args.out / "runs"
    rows, plain_run = [], None
    for name in ["none", *[s for s in args.strategies.split(",") if s != "none"]]:
        model = models / f"{args.task}-{name}"
        started = time.perf_counter()
        needs_run = name in ("augment", "consistency")
        task["train"](model, name, plain_run.path if needs_run else None, epochs)
        trained = time.perf_counter() - started
        started = time.perf_counter()
        run = sweep_with(task["config"], model, runs / f"{args.task}-{name}")
        swept = time.perf_counter() - started
        started = time.perf_counter()
        analyze(run, steps=STEPS, device="cpu")
        print(f"{name}: training {trained:.0f} s (0 when cached), sweep {swept:.0f} s, steps "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        plain_run = plain_run or run
        rows.append(row(name, model, run, plain_run, task["pgd"]))
    table = pd.DataFrame(rows)
    text = markdown(table.drop(columns=["breakpoints", "worst slice is"]))
    lines = [text, "", f"worst slice of the plain run: {rows[0]['worst slice is']}", "breakpoints (whole run):"]
    lines += [f"- {r['strategy']}: {r['breakpoints']}" for r in rows]
    print("\n".join(lines))
    costs = step_costs(task, models / f"{args.task}-none")
    lines += ["", "cost of one training step (loss and backward, batch of 64; median of 5 interleaved rounds):"]
    lines += [f"- {name}: {sec * 1000:.1f} ms ({sec / costs['augment']:.1f}× plain)" for name, sec in costs.items()]
    print("\n".join(lines[-4:]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.task}-table.md").write_text("\n".join(lines) + "\n")
    table.to_json(args.out / f"{args.task}-table.json", orient="records", indent=1)


if __name__ == "__main__":
    main()
