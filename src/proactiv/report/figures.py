"""The report's figures, each returned as a PNG data URI (or None when there is nothing to draw)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from proactiv.analysis.bias import BiasMaps, as_2d
from proactiv.analysis.interim import Interim
from proactiv.analysis.runview import RunView, format_value, q
from proactiv.report.style import InputKind, param_axis, param_label, png, pyplot

METRIC_LABELS = {
    "accuracy": "accuracy on xT",
    "flip_rate": "flip rate (pred. x̂T ≠ xT)",
    "loss_t": "loss on xT (d_g)",
    "d_x": "d_x: RMS of x̂T − xT",
}
MAX_PANELS = 12


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
            if metric in ("accuracy", "flip_rate"):
                ax.set_ylim(-0.02, 1.02)
            _set_param_ticks(ax, axis, column, params[column])
            ax.set_ylabel(METRIC_LABELS[metric])
            if r == 0 and c == 0:
                ax.legend(fontsize=7, loc="best")
    return png(fig)


def class_curves_figure(
    view: RunView, curves: pd.DataFrame, breakpoints: pd.DataFrame | None, colours: dict
) -> str | None:
    """Accuracy per class along each parameter (one panel per parameter), breakpoints marked with ×."""
    columns = _varying(view)
    data = curves[(curves.condition == "") & (curves.scope != "all") & (curves.metric == "accuracy")]
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
        ax.set_ylabel("accuracy on xT")
    axes[0, -1].legend(
        title="class (× = breakpoint)",
        fontsize=7,
        bbox_to_anchor=(1.02, 1),
        loc="upper left",
        ncol=1 + len(colours) // 13,
    )
    return png(fig)


def heatmaps_figure(view: RunView) -> str | None:
    """Mean accuracy (or loss for runs without predictions) over each pair of transform parameters."""
    columns = _varying(view)
    pairs = list(itertools.combinations(columns, 2))[:MAX_PANELS]
    if not pairs:
        return None
    metric, label = (
        ("correct_t::DOUBLE", "accuracy on xT") if view.classifier else ("loss_t", "mean loss on xT")
    )
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
        kw = {"vmin": 0, "vmax": 1} if view.classifier else {}
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
    panels.append(
        ("accuracy", "accuracy on xT") if "accuracy" in table else ("mean_loss_t", "mean loss on xT")
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
        continuous = col in ("accuracy", "mean_d_x", "mean_loss_t") or (
            col.startswith("meta.")
            and pd.api.types.is_numeric_dtype(table[col])
            and table[col].nunique() > 12
        )
        if continuous:
            kw = {"vmin": 0, "vmax": 1} if col == "accuracy" else {}
            sc = ax.scatter(x, y, c=values, cmap="viridis", s=22, edgecolors="none", **kw)
            fig.colorbar(sc, ax=ax, label=label)
        else:
            _scatter_discrete(fig, ax, x, y, values, label, colours if col == "label_name" else None)
        ax.set_title(f"coloured by {label}")
        ax.set_xlabel(f"{table.attrs.get('method', '')} 1")
        ax.set_ylabel(f"{table.attrs.get('method', '')} 2")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    return png(fig)


def _image(fig, ax, a: np.ndarray, kind: InputKind, cmap: str, label: str, vmin=None, vmax=None) -> None:
    im = ax.imshow(
        as_2d(a),
        origin=kind.origin,
        aspect=kind.aspect,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.set_xlabel(kind.column_label)
    ax.set_ylabel(kind.row_label)
    ax.grid(False)
    fig.colorbar(im, ax=ax, label=label, shrink=0.85)


def bias_figure(bias: BiasMaps, ranking: pd.DataFrame, kind: InputKind, k: int = 4) -> str | None:
    """The k strongest class biases: mean x̂T − xT (diverging), mean |x̂T − xT|, and the profiles of the
    mean change along the input's two axes."""
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
        title = f"class {r['class']!r} ({r['instances']} instances, {r['records']} records)"
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


def interim_figure(item: Interim, kind: InputKind, class_names: list[str] | None, where: str) -> str:
    """x, xT, x̂T on one colour scale and x̂T − xT on a diverging one, with predictions and losses."""
    plt = pyplot()
    rec = item.record
    if "pred_t" in rec:
        head = (
            f"instance {item.instance}, class {rec.get('label_name')!r} | {where}\n"
            f"prediction on xT: {_class_name(class_names, rec['pred_t'])!r} (loss {rec['loss_t']:.3g}) → on x̂T: "
            f"{_class_name(class_names, rec['pred_proj'])!r} (loss {rec['loss_proj']:.3g}), {rec.get('steps', '?')} steps, d_x {rec['d_x']:.3g}"
        )
    else:
        head = f"instance {item.instance} | {where}\nloss on xT {rec.get('loss_t', float('nan')):.3g} → on x̂T {rec.get('loss_proj', float('nan')):.3g}"
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
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.9 * (len(panels) + 1), 3.4), layout="constrained")
    stack = np.concatenate([as_2d(a).ravel() for _, a in panels])
    vmin, vmax = float(stack.min()), float(stack.max())
    for ax, (title, a) in zip(axes, panels, strict=False):
        _image(fig, ax, a, kind, kind.cmap, kind.unit, vmin, vmax)
        ax.set_title(title)
    lim = float(np.abs(item.diff).max()) or 1.0
    _image(fig, axes[-1], item.diff, kind, "RdBu_r", f"change ({kind.unit})", -lim, lim)
    axes[-1].set_title("x̂T − xT")
    fig.suptitle(head, fontsize=9)
    return png(fig)
