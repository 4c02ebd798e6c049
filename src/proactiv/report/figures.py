"""The report's figures, each returned as a PNG data URI (or None when there is nothing to draw)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from proactiv.analysis.bias import BiasMaps, as_2d
from proactiv.analysis.interim import Interim
from proactiv.analysis.runview import PSNR_CAP_DB, QUALITY_METRICS, RunView, format_value, metric_sql, q
from proactiv.report.style import InputKind, param_axis, param_label, png, pyplot

METRIC_LABELS = {
    "accuracy": "accuracy on xT",
    "within_cutoff": "within cutoff on xT",
    "flip_rate": "flip rate (pred. x̂T ≠ xT)",
    "loss_t": "loss on xT (d_g)",
    "d_x": "d_x: RMS of x̂T − xT",
}
FRACTIONS = ("accuracy", "within_cutoff", "flip_rate")
MAX_PANELS = 12


def _label(view: RunView, metric: str) -> str:
    """A curve metric for people (the outcome metric says what "correct" means in this run)."""
    if metric == view.correct_metric:
        return view.correct_label
    return METRIC_LABELS.get(metric) or QUALITY_METRICS.get(metric, metric)


def _varying(view: RunView) -> list[str]:
    """Grid columns with more than one value (the others have no curve to draw)."""
    return [c for c in view.grid_columns if len(view.values(c)) > 1]


def _set_param_ticks(ax, axis, column, param, rotate: bool = False) -> None:
    ax.set_xticks(axis.positions, axis.labels, rotation=30 if rotate or len(axis.values) > 6 else 0)
    ax.set_xlabel(param_label(column, param))


def curves_figure(view: RunView, curves: pd.DataFrame, breakpoints: pd.DataFrame | None) -> str | None:
    """Small multiples: one row per transform parameter, one column per metric, 95 % intervals shaded,
    the breakpoint (all instances, others marginalised) as a dashed line."""
    columns = _varying(view)
    marginal = curves[(curves.condition == "") & (curves.scope == "all")]
    metrics = [m for m in METRIC_LABELS if m in set(marginal.metric)]
    if not columns or not metrics:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(
        len(columns),
        len(metrics),
        figsize=(3.3 * len(metrics), 2.6 * len(columns)),
        squeeze=False,
        layout="constrained",
    )
    params = view.params
    for r, column in enumerate(columns):
        axis = param_axis(view.values(column), params[column])
        broken = (
            pd.DataFrame()
            if breakpoints is None
            else breakpoints[
                (breakpoints.column == column) & (breakpoints.scope == "all") & (breakpoints.condition == "")
            ]
        )
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            data = marginal[(marginal.column == column) & (marginal.metric == metric)].sort_values("value")
            pos = [axis.at(v) for v in data.value]
            ax.fill_between(
                pos, data.ci_low, data.ci_high, alpha=0.25, color="C0", label="95 % CI over instances"
            )
            ax.plot(pos, data["mean"], marker="o", color="C0", label="mean")
            for bp in broken.itertuples():
                ax.axvline(
                    axis.at(bp.value),
                    color="C3",
                    ls="--",
                    lw=1.2,
                    label=f"breaks at {format_value(bp.value)}",
                )
            if metric in FRACTIONS:
                ax.set_ylim(-0.02, 1.02)
            _set_param_ticks(ax, axis, column, params[column])
            ax.set_ylabel(_label(view, metric))
            if r == 0 and c == 0:
                ax.legend(fontsize=7, loc="best")
    return png(fig)


#: image-quality curves: (column, line label, colour, line style), drawn into a PSNR and an SSIM panel
QUALITY_LINES = (
    ("t", "xT vs clean x (how strong the corruption is)", "C7", "-"),
    ("proj", "x̂T vs clean x (did projection undo it?)", "C7", ":"),
    ("out_t", "f(xT) vs target (what the model made of it)", "C0", "-"),
    ("out_proj", "f(x̂T) vs target (after projection)", "C2", "--"),
)


def quality_figure(view: RunView, curves: pd.DataFrame) -> str | None:
    """PSNR and SSIM along each parameter (rows) for image runs: the inputs vs the clean input and, for
    image-to-image runs, the outputs vs the target — where f(xT) stays low the model cannot undo that
    corruption. PSNR is capped (identical images have infinite PSNR)."""
    columns = _varying(view)
    marginal = curves[(curves.condition == "") & (curves.scope == "all")]
    present = set(marginal.metric)
    families = [f for f in ("psnr", "ssim") if any(f"{f}_{s}" in present for s, *_ in QUALITY_LINES)]
    if not columns or not families:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(
        len(columns),
        len(families),
        figsize=(5.2 * len(families), 2.8 * len(columns)),
        squeeze=False,
        layout="constrained",
    )
    params = view.params
    for r, column in enumerate(columns):
        axis = param_axis(view.values(column), params[column])
        for c, family in enumerate(families):
            ax = axes[r, c]
            for suffix, label, colour, style in QUALITY_LINES:
                data = marginal[(marginal.column == column) & (marginal.metric == f"{family}_{suffix}")]
                if data.empty:
                    continue
                data = data.sort_values("value")
                pos = [axis.at(v) for v in data.value]
                ax.fill_between(pos, data.ci_low, data.ci_high, alpha=0.15, color=colour)
                ax.plot(pos, data["mean"], marker="o", ms=3, color=colour, ls=style, label=label)
            _set_param_ticks(ax, axis, column, params[column])
            if family == "psnr":
                ax.set_ylabel(f"PSNR (dB, capped at {PSNR_CAP_DB:g})")
            else:
                ax.set_ylabel("SSIM")
                ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
            if r == 0:
                ax.legend(fontsize=7, loc="best")
    return png(fig)


def class_curves_figure(
    view: RunView, curves: pd.DataFrame, breakpoints: pd.DataFrame | None, colours: dict
) -> str | None:
    """Accuracy (or share within the cutoff) per class or group along each parameter (one panel per
    parameter), breakpoints marked with ×."""
    columns = _varying(view)
    metric = view.correct_metric
    data = curves[(curves.condition == "") & (curves.scope != "all") & (curves.metric == metric)]
    if not columns or data.empty:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(columns), figsize=(4.2 * len(columns), 3.2), squeeze=False, layout="constrained"
    )
    params = view.params
    for ax, column in zip(axes[0], columns, strict=True):
        axis = param_axis(view.values(column), params[column])
        for cls, colour in colours.items():
            line = data[(data.column == column) & (data.scope == cls)].sort_values("value")
            if line.empty:
                continue
            ax.plot(
                [axis.at(v) for v in line.value], line["mean"], marker=".", color=colour, label=cls, lw=1.2
            )
        if breakpoints is not None:
            marks = breakpoints[
                (breakpoints.column == column) & (breakpoints.scope != "all") & (breakpoints.condition == "")
            ]
            for bp in marks.itertuples():
                ax.plot(
                    axis.at(bp.value), bp.after, marker="x", ms=9, mew=2, color=colours.get(bp.scope, "k")
                )
        ax.set_ylim(-0.02, 1.02)
        _set_param_ticks(ax, axis, column, params[column])
        ax.set_ylabel(_label(view, metric))
    axes[0, -1].legend(
        title=f"{view.group_title} (× = breakpoint)",
        fontsize=7,
        bbox_to_anchor=(1.02, 1),
        loc="upper left",
        ncol=1 + len(colours) // 13,
    )
    return png(fig)


def heatmaps_figure(view: RunView, metric: str | None = None) -> str | None:
    """A metric over each pair of transform parameters: accuracy (or share within the cutoff; the loss
    for runs with neither) by default, or a record column such as ``psnr_out_t``."""
    columns = _varying(view)
    pairs = list(itertools.combinations(columns, 2))[:MAX_PANELS]
    if not pairs:
        return None
    fraction = metric is None and view.correct_metric is not None
    if metric is None:
        metric, label = (
            ("correct_t::DOUBLE", view.correct_label) if fraction else ("loss_t", "mean loss on xT")
        )
    else:
        metric, label = metric_sql(metric), _label(view, metric)
    plt = pyplot()
    ncol = min(3, len(pairs))
    nrow = math.ceil(len(pairs) / ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(4.6 * ncol, 3.8 * nrow), squeeze=False, layout="constrained"
    )
    params = view.params
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        table = view.query(f"SELECT {q(a)} AS a, {q(b)} AS b, avg({metric}) AS m FROM records GROUP BY 1, 2")
        grid = table.pivot(index="b", columns="a", values="m").sort_index().sort_index(axis=1)
        kw = {"vmin": 0, "vmax": 1} if fraction else {}
        im = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis", **kw)
        if grid.size <= 150:
            for (i, j), v in np.ndenumerate(grid.to_numpy()):
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="w" if v < 0.6 * (kw.get("vmax") or np.nanmax(grid.to_numpy())) else "k",
                    )
        ax.set_xticks(
            range(grid.shape[1]),
            [format_value(v) for v in grid.columns],
            rotation=30 if grid.shape[1] > 6 else 0,
        )
        ax.set_yticks(range(grid.shape[0]), [format_value(v) for v in grid.index])
        ax.set_xlabel(param_label(a, params[a]))
        ax.set_ylabel(param_label(b, params[b]))
        ax.grid(False)
        fig.colorbar(im, ax=ax, label=label)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    return png(fig)


def _scatter_discrete(fig, ax, x, y, values, label, colours=None) -> None:
    """Colour by a category (legend) or by an ordered set of parameter values (discrete colour bar)."""
    plt = pyplot()
    cats = list(pd.unique(values))
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in cats)
    if numeric:
        order = sorted(float(v) for v in cats)
        index = np.asarray([order.index(float(v)) for v in values])
        cmap = plt.get_cmap("viridis", len(order))
        sc = ax.scatter(x, y, c=index, cmap=cmap, vmin=-0.5, vmax=len(order) - 0.5, s=22, edgecolors="none")
        bar = fig.colorbar(sc, ax=ax, ticks=range(len(order)), label=label)
        bar.ax.set_yticklabels([format_value(v) for v in order])
        return
    colours = colours or {
        c: plt.get_cmap("tab10" if len(cats) <= 10 else "tab20")(i % 20)
        for i, c in enumerate(sorted(map(str, cats)))
    }
    for cat in sorted(map(str, cats)):
        mask = np.asarray([str(v) == cat for v in values])
        ax.scatter(x[mask], y[mask], s=14, color=colours.get(cat, "grey"), label=cat, edgecolors="none")
    ax.legend(title=label, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(cats), 6))


def embedding_figure(view: RunView, table: pd.DataFrame, by: str, colours: dict) -> str | None:
    """The embedding as small multiples, coloured by each grid parameter (per point) or by class and each
    metadata column (per instance), and by accuracy."""
    if table is None or table.empty:
        return None
    x, y = table.x.to_numpy(), table.y.to_numpy()
    params = view.params
    panels: list[tuple[str, str]] = []
    if by == "point":
        panels += [(c, param_label(c, params[c])) for c in _varying(view)]
    else:
        if view.classifier:
            panels.append(("label_name", "class"))
        for col in view.meta_columns:
            if (
                col in table
                and 1 < table[col].nunique() <= 20
                or (col in table and pd.api.types.is_numeric_dtype(table[col]) and table[col].nunique() > 1)
            ):
                panels.append((col, col))
    outcome = view.correct_metric
    panels.append(
        (outcome, _label(view, outcome)) if outcome in table else ("mean_loss_t", "mean loss on xT")
    )
    panels.append(("mean_d_x", "mean d_x"))
    panels = panels[:MAX_PANELS]
    plt = pyplot()
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(4.8 * ncol, 3.8 * nrow), squeeze=False, layout="constrained"
    )
    for ax, (col, label) in zip(axes.flat, panels, strict=False):
        values = table[col].to_numpy()
        continuous = col in ("accuracy", "within_cutoff", "mean_d_x", "mean_loss_t") or (
            col.startswith("meta.")
            and col != view.group_column
            and pd.api.types.is_numeric_dtype(table[col])
            and table[col].nunique() > 12
        )
        if continuous:
            kw = {"vmin": 0, "vmax": 1} if col in FRACTIONS else {}
            sc = ax.scatter(x, y, c=values, cmap="viridis", s=22, edgecolors="none", **kw)
            fig.colorbar(sc, ax=ax, label=label)
        elif col in ("label_name", view.group_column):  # classes by name, in the report's class colours
            _scatter_discrete(fig, ax, x, y, values.astype(str), label, colours)
        else:
            _scatter_discrete(fig, ax, x, y, values, label)
        ax.set_title(f"coloured by {label}")
        ax.set_xlabel(f"{table.attrs.get('method', '')} 1")
        ax.set_ylabel(f"{table.attrs.get('method', '')} 2")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    return png(fig)


def _image(fig, ax, a: np.ndarray, kind: InputKind, cmap: str, label: str, vmin=None, vmax=None, bar=True):
    im = ax.imshow(
        as_2d(a),
        origin=kind.origin,
        aspect=kind.aspect,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    if kind.image:  # pixels speak for themselves; row/column ticks only clutter small images
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_xlabel(kind.column_label)
        ax.set_ylabel(kind.row_label)
    ax.grid(False)
    if bar:
        fig.colorbar(im, ax=ax, label=label, shrink=0.85)
    return im


def _bias_images(bias: BiasMaps, ranking: pd.DataFrame, kind: InputKind, k: int) -> str | None:
    """Image runs: the mean change of the k strongest classes side by side on one diverging scale (so they
    compare), and their mean |change| below."""
    top = ranking.head(k)
    if top.empty:
        return None
    plt = pyplot()
    means = [bias.mean(c) for c in top["class"]]
    mags = [bias.abs_mean(c) for c in top["class"]]
    lim = max(float(np.abs(m).max()) for m in means) or 1.0
    top_mag = max(float(m.max()) for m in mags) or 1.0
    n = len(top)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n + 1.6, 4.6), squeeze=False, layout="constrained")
    for j, r in enumerate(top.to_dict("records")):
        im_mean = _image(fig, axes[0, j], means[j], kind, "RdBu_r", "", -lim, lim, bar=False)
        axes[0, j].set_title(f"{bias.group} {r['class']}\n{r['instances']} inst.", fontsize=8)
        im_mag = _image(fig, axes[1, j], mags[j], kind, "magma", "", 0, top_mag, bar=False)
    axes[0, 0].set_ylabel("mean x̂T − xT")
    axes[1, 0].set_ylabel("mean |x̂T − xT|")
    fig.colorbar(im_mean, ax=axes[0, :].tolist(), label=f"change ({kind.unit})", shrink=0.9)
    fig.colorbar(im_mag, ax=axes[1, :].tolist(), label=f"|change| ({kind.unit})", shrink=0.9)
    return png(fig)


def bias_figure(bias: BiasMaps, ranking: pd.DataFrame, kind: InputKind, k: int = 4) -> str | None:
    """The k strongest class biases: mean x̂T − xT (diverging), mean |x̂T − xT|, and the profiles of the
    mean change along the input's two axes; for images up to 10 classes side by side, without profiles."""
    if kind.image:
        return _bias_images(bias, ranking, kind, max(k, 10))
    top = ranking.head(k)
    if top.empty:
        return None
    plt = pyplot()
    signal = kind.name == "signal"
    fig, axes = plt.subplots(
        len(top),
        2 if signal else 4,
        figsize=(15 if not signal else 10, 3.1 * len(top)),
        squeeze=False,
        layout="constrained",
    )
    unit = kind.unit
    for row, r in zip(axes, top.to_dict("records"), strict=True):
        mean, mag = bias.mean(r["class"]), bias.abs_mean(r["class"])
        title = f"{bias.group} {r['class']!r} ({r['instances']} instances, {r['records']} records)"
        if signal:
            row[0].plot(mean.ravel(), lw=0.8)
            row[0].set(title=f"{title}: mean x̂T − xT", xlabel=kind.column_label, ylabel=f"change ({unit})")
            row[1].plot(mag.ravel(), lw=0.8, color="C1")
            row[1].set(title="mean |x̂T − xT|", xlabel=kind.column_label, ylabel=f"|change| ({unit})")
            continue
        lim = float(np.abs(mean).max()) or 1.0
        _image(fig, row[0], mean, kind, "RdBu_r", f"mean x̂T − xT ({unit})", -lim, lim)
        row[0].set_title(f"{title}\nmean change x̂T − xT")
        _image(fig, row[1], mag, kind, "magma", f"mean |x̂T − xT| ({unit})")
        row[1].set_title("mean |change|")
        along_rows, along_cols = bias.profiles(r["class"])
        row[2].plot(along_rows, np.arange(len(along_rows)), color="C0", marker=".")
        row[2].axvline(0, color="k", lw=0.6)
        row[2].set(
            xlabel=f"mean change ({unit})", ylabel=kind.row_label, title=f"profile over {kind.row_label}s"
        )
        if kind.origin == "upper":
            row[2].invert_yaxis()
        row[3].plot(np.arange(len(along_cols)), along_cols, color="C0", marker=".")
        row[3].axhline(0, color="k", lw=0.6)
        row[3].set(
            xlabel=kind.column_label,
            ylabel=f"mean change ({unit})",
            title=f"profile over {kind.column_label}s",
        )
    return png(fig)


def _class_name(class_names: list[str] | None, index) -> str:
    i = int(index)
    return class_names[i] if class_names and 0 <= i < len(class_names) else str(i)


def _db(value) -> str:
    """A PSNR for people: ``18.3 dB``, ``∞ dB (identical)``."""
    v = float(value)
    return "∞ dB (identical)" if math.isinf(v) and v > 0 else f"{v:.1f} dB"


def _yes(value) -> str:
    return "yes" if bool(value) else "no"


def interim_heading(
    item: Interim, class_names: list[str] | None, where: str, group: str | None = None
) -> str:
    """Two lines on one record: what it is, and what projection changed (predictions or output quality)."""
    rec = item.record
    if "pred_t" in rec:
        return (
            f"instance {item.instance}, class {rec.get('label_name')!r} | {where}\n"
            f"prediction on xT: {_class_name(class_names, rec['pred_t'])!r} (loss {rec['loss_t']:.3g}) → on x̂T: "
            f"{_class_name(class_names, rec['pred_proj'])!r} (loss {rec['loss_proj']:.3g}), "
            f"{rec.get('steps', '?')} steps, d_x {rec['d_x']:.3g}"
        )
    who = f"instance {item.instance}"
    if group and group in rec and group != "label_name":
        who += f", {group.removeprefix('meta.')} {rec[group]}"
    text = (
        f"{who} | {where}\nloss on xT {rec.get('loss_t', float('nan')):.3g} → on x̂T "
        f"{rec.get('loss_proj', float('nan')):.3g}"
    )
    if "correct_t" in rec:
        text += f" (within cutoff: {_yes(rec['correct_t'])} → {_yes(rec.get('correct_proj'))})"
    if "psnr_out_t" in rec:
        text += f"; PSNR f(xT) {_db(rec['psnr_out_t'])} → f(x̂T) {_db(rec['psnr_out_proj'])}"
    return text + f", {rec.get('steps', '?')} steps"


def interim_figure(
    item: Interim,
    kind: InputKind,
    class_names: list[str] | None,
    where: str,
    group: str | None = None,
) -> str:
    """x, xT, x̂T on one colour scale and x̂T − xT on a diverging one, with predictions and losses; for
    image-to-image runs a second row with the target y, f(xT), f(x̂T) and their change."""
    plt = pyplot()
    head = interim_heading(item, class_names, where, group)
    panels = [("x (clean)", item.x), ("xT (transformed)", item.x_t), ("x̂T (projected)", item.x_proj)]
    panels = [(t, a) for t, a in panels if a is not None]
    if kind.name == "signal":
        fig, axes = plt.subplots(1, 2, figsize=(12, 3), layout="constrained")
        for title, a in panels:
            axes[0].plot(a.ravel(), lw=0.7, label=title)
        axes[0].legend(fontsize=7)
        axes[0].set(xlabel=kind.column_label, ylabel=kind.unit)
        axes[1].plot(item.diff.ravel(), lw=0.7, color="C3")
        axes[1].set(title="x̂T − xT", xlabel=kind.column_label, ylabel=kind.unit)
        fig.suptitle(head, fontsize=9)
        return png(fig)
    outputs = item.y_t is not None and item.y_proj is not None and kind.name != "signal"
    rows = [(panels, item.diff, "x̂T − xT")]
    if outputs:
        out = [("y (target)", item.y), ("f(xT) (output)", item.y_t), ("f(x̂T) (output)", item.y_proj)]
        rows.append(([(t, a) for t, a in out if a is not None], item.y_proj - item.y_t, "f(x̂T) − f(xT)"))
    ncol = max(len(p) for p, _, _ in rows) + 1
    size = (2.9, 2.9) if kind.image else (3.9, 3.4)
    fig, axes = plt.subplots(
        len(rows), ncol, figsize=(size[0] * ncol, size[1] * len(rows) + 0.5), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    stack = np.concatenate([as_2d(a).ravel() for p, _, _ in rows for _, a in p])
    vmin, vmax = float(stack.min()), float(stack.max())
    for r, (shown, change, change_title) in enumerate(rows):
        for ax, (title, a) in zip(axes[r], shown, strict=False):
            _image(fig, ax, a, kind, kind.cmap, kind.unit, vmin, vmax)
            ax.set_title(title)
        for ax in axes[r, len(shown) : ncol - 1]:
            ax.set_visible(False)
        lim = float(np.abs(change).max()) or 1.0
        _image(fig, axes[r, -1], change, kind, "RdBu_r", f"change ({kind.unit})", -lim, lim)
        axes[r, -1].set_title(change_title)
    fig.suptitle(head, fontsize=9)
    return png(fig)
