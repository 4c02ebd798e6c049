"""Benchmark the keyword model outside its corpus: today's model against one trained on the open-set corpus.

Synthesises the demo corpus (cached), trains a model on it (all engines) and one without ``--held-out``, and
evaluates them and the baseline model (``--baseline``, read only) on the same test material: accuracy on
held-out voices per engine, held-out unknown words taken for a keyword (near-misses apart; homophones apart,
not counted), false accepts per hour of running speech and the keyword hit rate (1-s window, 100-ms hop, a
keyword fires after 3 consecutive windows), and the new model without its ``_unknown_`` offset.

    .venv/bin/python benchmarks/bench_kws_openset.py                          # ~10 min on 2 idle cores
    .venv/bin/python benchmarks/bench_kws_openset.py --model /tmp/e/models/dscnn --held-out ''   # reuse
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from proactiv.tasks.kws.models import arch_parts, load_model
from proactiv.tasks.kws.openset import evaluate
from proactiv.tasks.kws.speech_commands import SpeechCommands
from proactiv.tasks.kws.synth import synthesize
from proactiv.tasks.kws.train import accuracy_report, compute_features, predict, train


def test_accuracy(model, data: str) -> dict:
    """Accuracy on the test split (held-out voices; unknown words held out too), overall and per engine."""
    test = SpeechCommands(data, split="test")
    engines = test.metadata.engine.where(test.metadata.label_name != "_silence_", "_background_")
    feats = compute_features(model.frontend, test.waveforms())
    return accuracy_report(predict(model, feats), test.labels, engines.to_numpy(), model.class_names)


def measure(model, data: str) -> dict:
    return {"test": test_accuracy(model, data), **evaluate(model, data)}


def per_voice(model, data: str, engine: str) -> dict:
    """Keyword accuracy and unknown words taken for a keyword, per voice of ``engine`` (clips of every split).

    A held-out engine's voices are of different kinds (flite: diphone kal/kal16, statistical-parametric
    awb/rms/slt): the engine's one accuracy hides which kind the model cannot hear yet.
    """
    clips = SpeechCommands(data, split=None, silence_per_class=0)
    keep = torch.tensor((clips.metadata.engine == engine).to_numpy())
    frame = clips.metadata[keep.numpy()]
    feats = compute_features(model.frontend, clips.waveforms()[keep])
    right = (predict(model, feats) == clips.labels[keep]).numpy()
    keyword = (frame.label_name != "_unknown_").to_numpy()
    found = {}
    for voice in sorted(frame.voice.unique()):
        mine = (frame.voice == voice).to_numpy()
        found[voice] = {
            "keyword_accuracy": float(right[mine & keyword].mean()),
            "unknown_false_accept_rate": float(1 - right[mine & ~keyword].mean()),
            "clips": int(mine.sum()),
        }
    return found


def row(name: str, found: dict) -> list[str]:
    words, speech = found["unknown_words"], found.get("running_speech", {})
    return [
        name,
        f"{found['test']['accuracy']:.1%}",
        " ".join(f"{v:.1%}" for e, v in found["test"]["per_engine"].items() if not e.startswith("_")),
        f"{words['false_accept_rate']:.1%}",
        " ".join(f"{v:.1%}" for v in words["per_engine"].values()),
        f"{words['near_miss']['false_accept_rate']:.1%}",
        f"{words['other']['false_accept_rate']:.1%}",
        f"{found['homophones']['taken_for_their_keyword']:.0%}" if "homophones" in found else "-",
        f"{speech.get('false_accepts_per_hour', float('nan')):.0f}",
        " ".join(f"{v['per_hour']:.0f}" for v in speech.get("per_engine", {}).values()),
        f"{speech.get('hit_rate', float('nan')):.0%}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=".cache/kws-demo", help="corpus folder (synthesised when absent)")
    parser.add_argument(
        "--baseline", default="models/kws-dscnn", help="today's model (read only; '' to skip)"
    )
    parser.add_argument("--model", default="", help="an already trained model folder to evaluate instead")
    parser.add_argument("--out", default=".cache/bench-kws-openset", help="where new models go")
    parser.add_argument("--held-out", default="flite", help="engine left out of a second model ('' to skip)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--members", type=int, default=1, help="networks per new model (an ensemble when > 1)"
    )
    parser.add_argument(
        "--arch", default="dscnn", help="architecture of the new models (joined by + for one of each)"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    meta = synthesize(args.data, seed=args.seed, progress=True)
    print(f"corpus {args.data}: {len(meta)} clips, ready in {time.perf_counter() - start:.0f} s")
    summary = {}
    if args.model:
        folder = Path(args.model)
        metrics = json.loads((folder / "metrics.json").read_text())
    else:
        folder = Path(args.out) / "all-engines"
        metrics = train(args.data, arch=args.arch, out=folder, seed=args.seed, threads=args.threads,
                        members=args.members)  # fmt: skip
    networks = metrics.get("members", 1) * len(arch_parts(metrics["arch"]))
    print(f"new model: {metrics['arch']}, {networks} network(s), {metrics['epochs']} epochs in {metrics['train_seconds']:.0f} s, "
          f"non-keyword offset {metrics['calibration']['unknown_offset']:+.2f} chosen on validation "
          f"(validation {metrics['calibration']['validation']})")  # fmt: skip
    models = {}
    if args.baseline:
        models["today's model"] = load_model(Path(args.baseline) / "model.pt")
    models["new model"] = load_model(folder / "model.pt")
    uncalibrated = load_model(folder / "model.pt")
    uncalibrated.logit_offset = None
    models["new, no offset"] = uncalibrated
    head = ["model", "held-out voices", "espeak festival flite", "unknown FA", "per engine", "near-miss FA",
            "other FA", "homophones", "FA/hour", "per engine", "hit rate"]  # fmt: skip
    rows = [head]
    for name, model in models.items():
        found = measure(model, args.data)
        summary[name] = found
        rows.append(row(name, found))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    words = summary["new model"]["unknown_words"]["confusions"][:12]
    print("new model, held-out words most often taken for a keyword: "
          + ", ".join(f"{w['word']} ({w['kind']}) -> {'/'.join(w['taken_for'])}" for w in words))  # fmt: skip
    if args.held_out:
        held = train(args.data, arch=args.arch, out=Path(args.out) / f"without-{args.held_out}", seed=args.seed,
                     threads=args.threads, exclude_engines=(args.held_out,), members=args.members)  # fmt: skip
        print(f"without {args.held_out}: held-out engine accuracy {held['held_out']['accuracy']:.1%} "
              f"({held['train_seconds']:.0f} s)")  # fmt: skip
        voices = per_voice(load_model(Path(args.out) / f"without-{args.held_out}" / "model.pt"), args.data,
                           args.held_out)  # fmt: skip
        print(f"without {args.held_out}, per voice (keywords right / unknown words taken for a keyword): "
              + ", ".join(f"{v} {f['keyword_accuracy']:.0%}/{f['unknown_false_accept_rate']:.0%}"
                          for v, f in voices.items()))  # fmt: skip
        summary["held_out"] = {k: held[k] for k in ("held_out", "test", "train_seconds")}
        summary["held_out"]["per_voice"] = voices
    path = Path(args.out) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    for found in summary.values():
        found.get("running_speech", {}).pop("accepts", None)
    path.write_text(json.dumps(summary, indent=2, default=str))
    print(f"summary written to {path}")


if __name__ == "__main__":
    main()
