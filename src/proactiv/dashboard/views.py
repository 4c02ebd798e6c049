"""The dashboard's callbacks as plain functions (testable and benchmarkable without a browser).

Each takes the opened runs and the browser's inputs and returns what Dash puts on the page. Inputs from the
browser are validated here: runs by index, records by (instance, point) integers present in the run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from dash import html

from proactiv.analysis.runview import PSNR_CAP_DB
from proactiv.dashboard import figures
from proactiv.dashboard.audio import record_audio
from proactiv.dashboard.data import Filter, RunData, fmt_value

EMPTY_FILTER = {"points": None, "instances": None, "slice": None}


def pick(runs: list[RunData | str], index) -> RunData:
    """The run at ``index`` (an int from the run picker); ValueError for anything else."""
    try:
        i = int(index or 0)
    except (TypeError, ValueError):
        raise ValueError("bad run index") from None
    if not 0 <= i < len(runs) or isinstance(runs[i], str):
        raise ValueError("no usable run at that index")
    return runs[i]


# overview ---------------------------------------------------------------------------------------
def curve_panels(data: RunData) -> list[tuple[str, list[str]]]:
    """Rows of the overview curves: (title, metrics drawn in it); PSNR and SSIM lines share a row each."""
    rows = [(m.replace("_", " "), [m]) for m in (data.outcome, "flip_rate", "mean_d_x") if m in data.metrics]
    for family, title in (("psnr", "PSNR (dB)"), ("ssim", "SSIM")):
        shown = [m for m in data.metrics if m.startswith(family)]
        if shown:
            rows.append((title, shown))
    return rows or [(m.replace("_", " "), [m]) for m in list(data.metrics)[:1]]


def overview(data: RunData, store: dict | None, col_a: str | None, col_b: str | None, metric: str | None):
    """Breakpoint curves of every metric along every grid parameter, and a heatmap over two parameters."""
    flt = Filter.from_store(store)
    panels = curve_panels(data)
    marginals = {c: data.marginal(c, flt) for c in data.grid_columns}
    if all(t.empty for t in marginals.values()):
        curves = figures.message_figure("no records in the current filter")
    else:
        curves = figures.curves_figure(data, marginals, panels)
    cols = data.grid_columns
    col_a = col_a if col_a in cols else cols[0]
    col_b = col_b if col_b in cols else cols[min(1, len(cols) - 1)]
    metric = metric if metric in data.metrics else panels[0][1][0]
    heat = figures.heatmap_figure(
        data.heatmap(col_a, col_b, metric, flt), data.grid_label(col_a), data.grid_label(col_b), metric
    )
    return curves, heat


def summary_children(data: RunData) -> list:
    """The overview header: model, data, grid and clean accuracy (or, without predictions, the share of
    outputs within the loss cutoff and the output PSNR)."""
    s = data.summary()
    if s["group"] and s["group"] != "label_name":
        classes = f"no classes (image-to-image) · grouped by {s['group']} ({s['groups']} groups)"
    elif data.classifier:
        classes = f"{s['classes']} classes"
    else:
        classes = "no classes (image-to-image or regression)"
    items = [
        ("run", f"{s['name']} ({s['status']})"),
        ("task", f"{s['task']} · {s['domain']} domain · {s['kind']} inputs"),
        ("model", s["model"]),
        ("data", f"{s['instances']} instances · {classes}"),
        ("grid", f"{s['points']} points: {s['grid']}"),
        ("records", f"{s['records']:,}"),
    ]
    if s["within_cutoff"] is not None:
        ident = s["within_cutoff"]["identity"]
        items.append(
            (
                s["correct_label"],
                f"{100 * s['within_cutoff']['all']:.1f} % of all records"
                + ("" if ident is None else f" · {100 * ident:.1f} % at the identity point"),
            )
        )
    elif s["clean_accuracy"] is not None or data.classifier:
        acc = "—" if s["clean_accuracy"] is None else f"{100 * s['clean_accuracy']:.1f} %"
        items.append(("clean accuracy", acc))
    for m, v in s["psnr"].items():
        items.append(
            (
                f"mean {data.metrics[m][1].removesuffix(' (dB)')}",
                f"{v:.1f} dB (identical images, PSNR ∞, count as {PSNR_CAP_DB:g} dB)",
            )
        )
    out = [
        html.Div([html.Span(k, className="k"), html.Span(v, className="v")], className="kv") for k, v in items
    ]
    for step, note in s["notes"].items():
        out.append(html.Div(f"{step}: {note}", className="note"))
    return out


# embeddings -------------------------------------------------------------------------------------
def colour_options(data: RunData, by: str) -> list[str]:
    """What an embedding can be coloured by: grid values (points); class and metadata (instances); metrics."""
    metrics = list(data.metrics)
    if by == "point":
        return [*data.grid_columns, *metrics]
    return [*(["label_name"] if data.classifier else []), *data.meta_columns, *metrics]


def _is_class(data: RunData, column: str) -> bool:
    """Whether a column names each instance's class (drawn as categories in the class colours)."""
    return column in ("label_name", data.view.group_column)


def embeddings(data: RunData, store: dict | None, point_colour: str | None, instance_colour: str | None):
    """Transform and instance embeddings; metrics recomputed over the filter the other views set."""
    flt = Filter.from_store(store)
    return (
        embedding_figure(data, flt, "point", point_colour),
        embedding_figure(data, flt, "instance", instance_colour),
    )


def embedding_figure(
    data: RunData,
    flt: Filter,
    by: str,
    colour: str | None,
    title: str | None = None,
    category_index: dict[str, int] | None = None,
):
    """One embedding (``by`` = "point" or "instance"), coloured by ``colour`` (validated), metrics over
    ``flt`` without its own selection; ``category_index`` fixes category colours (shared across runs)."""
    table = data.analysis.embedding_points if by == "point" else data.analysis.embedding_instances
    if table is None or table.empty:
        return figures.message_figure(f"no {by} embedding (see the analysis notes)")
    options = colour_options(data, by)
    colour = colour if colour in options else options[0]
    base = table[
        [by, "x", "y", *[c for c in table.columns if c not in data.metrics and c not in (by, "x", "y")]]
    ]
    own = getattr(flt, by + "s")
    live = (data.per_point if by == "point" else data.per_instance)(flt.without(by + "s"))
    frame = base.merge(live[[by, *data.metrics]], on=by, how="left")
    if colour in data.grid_columns:
        frame[colour] = [fmt_value(float(v)) for v in frame[colour]]
    categorical = (
        colour in data.grid_columns
        or _is_class(data, colour)
        or not pd.api.types.is_numeric_dtype(frame[colour])
    )
    if title is None:
        title = (
            "Transform embedding — one point per grid point"
            if by == "point"
            else "Instance embedding — one point per instance"
        )
    if category_index is None:
        category_index = {c: i for i, c in enumerate(data.class_names or data.groups)}
    return figures.scatter_figure(
        frame, by, colour, title, categorical, category_index, None if own is None else set(own)
    )


def run_options(data: RunData) -> tuple[list, ...]:
    """The choices of every per-run dropdown, for when another run is picked."""
    classes, values = bias_options(data)
    return (
        colour_options(data, "point"),
        colour_options(data, "instance"),
        data.grid_columns,
        data.grid_columns,
        list(data.metrics),
        classes,
        values,
    )


def _ids(selected: dict | None) -> list[int] | None:
    if not selected or "points" not in selected:
        return None
    out = []
    for p in selected["points"]:
        v = p.get("customdata")
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(int(v))
    return sorted(set(out))


def update_filter(
    trigger: str | None,
    store: dict | None,
    points_selected: dict | None,
    instances_selected: dict | None,
    slice_cell: dict | None,
    slice_rows: list[dict] | None,
) -> dict:
    """The new filter after a selection, a slice click or a reset (``trigger`` names the input)."""
    new = dict(EMPTY_FILTER if store is None else store)
    if trigger in (None, "clear", "run"):
        return dict(EMPTY_FILTER)
    if trigger == "emb-points":
        new["points"] = _ids(points_selected)
    elif trigger == "emb-instances":
        new["instances"] = _ids(instances_selected)
    elif trigger == "slices" and slice_cell and slice_rows:
        row = int(slice_cell.get("row", -1))
        if 0 <= row < len(slice_rows):
            number = int(slice_rows[row]["slice"])
            new["slice"] = None if new.get("slice") == number else number
    return new


def filter_text(store: dict | None) -> str:
    """One line saying what the views are filtered by."""
    flt = Filter.from_store(store)
    if flt.empty:
        return "Showing all records. Lasso or box-select in an embedding, or click a slice, to filter."
    parts = []
    if flt.points is not None:
        parts.append(f"{len(flt.points)} grid points")
    if flt.instances is not None:
        parts.append(f"{len(flt.instances)} instances")
    if flt.slice is not None:
        parts.append(f"slice {flt.slice}")
    return "Filtered to " + " · ".join(parts)


# slices -----------------------------------------------------------------------------------------
def slices_rows(data: RunData, store: dict | None) -> list[dict]:
    """The error-slice table, restricted to slices with records in the current embedding selection."""
    flt = Filter.from_store(store)
    table = data.slice_counts(flt)
    if table.empty:
        return []
    if flt.points is not None or flt.instances is not None:
        table = table[table["selected"] > 0]
    table = table.copy()
    for c in ("error_rate", "coverage"):
        table[c] = table[c].round(3)
    return table.to_dict("records")


# records ----------------------------------------------------------------------------------------
def kept_columns(data: RunData) -> list[str]:
    """Columns of the kept-records table of a run (predictions, or group and output quality)."""
    if data.classifier:
        extra = ["label_name", "pred_t", "pred_proj"]
    else:
        extra = [c for c in (data.view.group_column, "correct_t", "psnr_out_t") if c in data.columns]
    return ["instance", "point", *data.grid_columns, *extra, "loss_t", "d_x"]


#: headers of kept-record columns whose name says too little on its own
COLUMN_TITLES = {"correct_t": "output within cutoff", "psnr_out_t": "PSNR f(xT) (dB)", "label_name": "class"}


def kept_table_columns(data: RunData) -> list[dict]:
    """The kept-records table's columns as Dash wants them (``id`` = record column, ``name`` = header)."""
    return [{"name": COLUMN_TITLES.get(c, c), "id": c} for c in kept_columns(data)]


def kept_rows(data: RunData, store: dict | None) -> list[dict]:
    """Records with kept arrays in the filter (worst first), to pick one for the detail view."""
    table = data.kept_records(Filter.from_store(store))
    for c in data.grid_columns:
        table[c] = [fmt_value(float(v)) for v in table[c]]
    if data.classifier:
        table["pred_t"] = [data.class_name(v) for v in table["pred_t"]]
        table["pred_proj"] = [data.class_name(v) for v in table["pred_proj"]]
    elif "correct_t" in table:  # "correct" here: the output's loss is within the cutoff
        table["correct_t"] = ["yes" if v else "no" for v in table["correct_t"]]
    if "psnr_out_t" in table:
        table["psnr_out_t"] = [fmt_value(round(float(v), 2)) for v in table["psnr_out_t"]]
    for c in ("loss_t", "d_x"):
        table[c] = table[c].round(4)
    return table.to_dict("records")


def choose_record(
    data: RunData,
    trigger: str | None,
    cell: dict | None,
    rows: list[dict] | None,
    click: dict | None,
    store,
    point_click: dict | None = None,
) -> dict | None:
    """The record to show: a clicked kept-record row, or the worst kept record of a clicked instance (instance
    embedding) or grid point (transform embedding), within the current filter when it has one there."""
    if trigger == "kept" and cell and rows:
        row = int(cell.get("row", -1))
        if 0 <= row < len(rows):
            return {"instance": int(rows[row]["instance"]), "point": int(rows[row]["point"])}
    by = {"emb-instances": ("instances", click), "emb-points": ("points", point_click)}.get(trigger or "")
    if by is None:
        return None
    ids = _ids(by[1])
    if not ids:
        return None
    flt = Filter.from_store(store)
    for candidate in (Filter(**{**flt.__dict__, by[0]: (ids[0],)}), Filter(**{by[0]: (ids[0],)})):
        table = data.kept_records(candidate, limit=1)
        if not table.empty:
            return {"instance": int(table["instance"].iloc[0]), "point": int(table["point"].iloc[0])}
    return None


def _db(value) -> str:
    v = float(value)
    return "∞ dB (identical)" if np.isposinf(v) else f"{v:.1f} dB"


def record_detail(data: RunData, chosen: dict | None):
    """The interim view of one record: x, xT, x̂T and x̂T − xT, with predictions and losses before/after;
    for image-to-image runs also the outputs f(xT), f(x̂T) beside the clean target."""
    from proactiv.analysis import interim

    if not chosen:
        return figures.message_figure(
            "click a record in the table, or an instance in the instance embedding"
        ), []
    try:
        instance, point = int(chosen["instance"]), int(chosen["point"])
    except (KeyError, TypeError, ValueError):
        return figures.message_figure("invalid record"), []
    record = data.record(instance, point)
    if record is None:
        return figures.message_figure(f"this run has no record ({instance}, {point})"), []
    if not data.is_kept(instance, point):
        return figures.message_figure(f"no arrays were kept for record ({instance}, {point})"), []
    it = interim(data.run, instance, point)
    maps = {
        "x": None if it.x is None else figures.spectrogram(it.x),
        "x_t": figures.spectrogram(it.x_t),
        "x_proj": figures.spectrogram(it.x_proj),
        "diff": figures.spectrogram(it.diff)
        if np.squeeze(it.diff).ndim > 1
        else figures.spectrogram(it.x_proj) - figures.spectrogram(it.x_t),
    }
    if it.y_t is not None and it.y_proj is not None and np.squeeze(it.y_t).ndim > 1:
        maps.update(
            y=None if it.y is None else figures.spectrogram(it.y),
            y_t=figures.spectrogram(it.y_t),
            y_proj=figures.spectrogram(it.y_proj),
            y_diff=figures.spectrogram(it.y_proj - it.y_t),
        )
    fig = figures.interim_figure(maps, data.kind)
    grid = ", ".join(f"{c} = {fmt_value(float(record[c]))}" for c in data.grid_columns)
    facts = [html.Div(f"instance {instance} · grid point {point}: {grid}", className="kv")]
    group = data.view.group_column
    if data.classifier:
        facts.append(
            html.Div(
                f"label {data.class_name(record['label'])} · prediction on x {data.class_name(record['pred_clean'])}"
                f" → on xT {data.class_name(record['pred_t'])} → on x̂T {data.class_name(record['pred_proj'])}",
                className="kv",
            )
        )
    elif group is not None and group in record:
        facts.append(html.Div(f"{data.view.group_title} {record[group]}", className="kv"))
    facts.append(
        html.Div(
            f"loss on xT {record['loss_t']:.4f} → on x̂T {record['loss_proj']:.4f} · d_x {record['d_x']:.4f}"
            f" · {int(record.get('steps', 0))} steps",
            className="kv",
        )
    )
    if not data.classifier and "correct_t" in record:
        words = {True: "within the loss cutoff", False: "outside the loss cutoff"}
        facts.append(
            html.Div(
                f"output on xT {words[bool(record['correct_t'])]} → on x̂T {words[bool(record['correct_proj'])]}",
                className="kv",
            )
        )
    if "psnr_out_t" in record:
        facts.append(
            html.Div(
                f"PSNR against the target: f(xT) {_db(record['psnr_out_t'])} → f(x̂T) {_db(record['psnr_out_proj'])}"
                f" · SSIM {record['ssim_out_t']:.3f} → {record['ssim_out_proj']:.3f}",
                className="kv",
            )
        )
    if "psnr_t" in record:
        facts.append(
            html.Div(
                f"PSNR against the clean input: xT {_db(record['psnr_t'])} · x̂T {_db(record['psnr_proj'])}",
                className="kv",
            )
        )
    return fig, facts


def record_sound(data: RunData, chosen: dict | None) -> list:
    """Audio players for x, xT and x̂T of the chosen record, or a note why there are none; nothing at all for
    image runs (no "Listen" heading either).

    A separate callback from :func:`record_detail`: a Griffin-Lim inversion takes seconds on 2 cores, and
    the pictures should not wait for it. Results are cached per record.
    """
    from proactiv.analysis import interim

    if not chosen or data.kind.image:
        return []
    try:
        instance, point = int(chosen["instance"]), int(chosen["point"])
    except (KeyError, TypeError, ValueError):
        return []
    if not data.is_kept(instance, point):
        return []
    key = ("audio", instance, point)
    if key not in data._cache:
        it = interim(data.run, instance, point)
        data._cache[key] = record_audio(data, {"x": it.x, "x_t": it.x_t, "x_proj": it.x_proj})
    players, note = data._cache[key]
    labels = {"x": "x (clean)", "x_t": "xT", "x_proj": "x̂T"}
    return [html.H4("Listen"), html.Div(note, className="note")] + [
        html.Div([html.Span(labels[k], className="k"), html.Audio(src=uri, controls=True, id=f"audio-{k}")])
        for k, uri in players
    ]


# bias maps --------------------------------------------------------------------------------------
def bias_options(data: RunData) -> tuple[list[str], list[dict]]:
    """Classes with bias maps, and transform values to pool by (``column=value`` keys, validated later)."""
    bias = data.analysis.bias
    if bias is None:
        return [], []
    values = [{"label": "all grid points", "value": ""}]
    for c in bias.columns:
        for v in sorted(set(bias.point_values[:, bias.columns.index(c)].tolist())):
            values.append({"label": f"{data.grid_label(c)} = {fmt_value(v)}", "value": f"{c}={v!r}"})
    return list(bias.classes), values


def bias_group(data: RunData) -> str:
    """What the bias maps' classes are: "class", or the group of a run without predictions ("digit")."""
    bias = data.analysis.bias
    return "class" if bias is None or bias.group == "all" else bias.group


def bias_view(data: RunData, class_name: str | None, value_key: str | None):
    bias = data.analysis.bias
    if bias is None:
        return figures.message_figure("no bias maps in this run's analysis (no arrays kept?)")
    classes, values = bias_options(data)
    class_name = class_name if class_name in classes else classes[0]
    allowed = {o["value"] for o in values}
    where = None
    label = "all grid points"
    if value_key and value_key in allowed:
        col, _, v = value_key.partition("=")
        where = {col: float(v)}
        label = f"{col} = {fmt_value(float(v))}"
    try:
        mean = bias.mean(class_name, where=where)
    except KeyError as err:
        return figures.message_figure(str(err).strip("'\""))
    pooled = int(bias.instances_[bias.classes.index(class_name)])
    what = "all instances" if bias.group == "all" else f"{bias.group} {class_name}"
    return figures.bias_figure(mean, f"{what} · {label}: mean x̂T − xT over {pooled} instances", data.kind)


# compare ----------------------------------------------------------------------------------------
def compare(runs: list[RunData | str], col_a: str | None, col_b: str | None):
    """Two runs side by side: accuracy curves of both, both heatmaps, and their difference (B − A)."""
    usable = [r for r in runs if not isinstance(r, str)]
    if len(usable) < 2:
        msg = figures.message_figure("start the dashboard with two runs to compare them")
        return msg, msg, msg
    a, b = usable[0], usable[1]
    metric = compare_metric(a, b)
    common = [c for c in a.grid_columns if c in b.grid_columns]
    if not common:
        msg = figures.message_figure("the two runs share no grid parameter")
        return msg, msg, msg
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    curves = make_subplots(
        rows=1, cols=len(common), shared_yaxes=True, column_titles=[a.grid_label(c) for c in common]
    )
    for k, (d, colour) in enumerate(((a, "#1f77b4"), (b, "#d62728"))):
        for j, c in enumerate(common, start=1):
            t = d.marginal(c, Filter())
            curves.add_trace(
                go.Scatter(x=[fmt_value(v) for v in t["value"]], y=t[metric], name=d.path.name, mode="lines+markers",
                           line={"color": colour}, showlegend=j == 1, legendgroup=str(k)),
                row=1, col=j,
            )  # fmt: skip
    curves.update_xaxes(type="category")
    curves.update_yaxes(title_text=metric, row=1, col=1)
    curves.update_layout(template=figures.TEMPLATE, height=320, margin={"t": 40, "b": 30, "l": 60, "r": 10})
    col_a = col_a if col_a in common else common[0]
    col_b = col_b if col_b in common else common[min(1, len(common) - 1)]
    ta = a.heatmap(col_a, col_b, metric, Filter())
    tb = b.heatmap(col_a, col_b, metric, Filter())
    both = ta.merge(tb, on=["a", "b"], suffixes=("_a", "_b"))
    if both.empty:
        msg = figures.message_figure("the two runs share no grid point")
        return curves, msg, msg
    pair = figures.pair_heatmap(
        ta, tb, a.path.name, b.path.name, a.grid_label(col_a), a.grid_label(col_b), metric
    )
    both["m"] = both["m_b"] - both["m_a"]
    heat = figures.heatmap_figure(
        both[["a", "b", "m"]], a.grid_label(col_a), a.grid_label(col_b),
        f"{metric} {b.path.name} − {a.path.name}", diverging=True,
    )  # fmt: skip
    return curves, pair, heat


def _pair(runs: list[RunData | str]) -> tuple[RunData, RunData] | None:
    usable = [r for r in runs if not isinstance(r, str)]
    return (usable[0], usable[1]) if len(usable) >= 2 else None


def compare_metric(a: RunData, b: RunData) -> str:
    """The metric two runs are compared on: accuracy (or the share within the cutoff) when both have it,
    else mean d_x."""
    for metric in ("accuracy", "within_cutoff"):
        if metric in a.metrics and metric in b.metrics:
            return metric
    return "mean_d_x"


def grid_difference(a: RunData, b: RunData, metric: str) -> tuple[pd.DataFrame, str | None]:
    """``metric`` per grid point of both runs, matched on the grid parameters' values (not on point ids),
    with ``diff`` = b − a; and a note when the grids differ (points of only one run are left out)."""
    if set(a.grid_columns) != set(b.grid_columns):
        only = sorted(set(a.grid_columns) ^ set(b.grid_columns))
        return (
            pd.DataFrame(),
            f"The grids differ in their parameters ({', '.join(only)}): no grid point is shared.",
        )
    cols = a.grid_columns
    keys = [f"_key{i}" for i in range(len(cols))]
    tables = []
    for d in (a, b):
        t = d.per_point(Filter())
        for k, c in zip(keys, cols, strict=True):
            t[k] = t[c].astype(float).round(9)  # match values, tolerant of float noise
        tables.append(t)
    ta, tb = tables
    both = ta[[*keys, *cols, "point", "n", metric]].merge(
        tb[[*keys, "point", "n", metric]], on=keys, suffixes=("_a", "_b")
    )
    both = both.drop(columns=keys).rename(columns={f"{metric}_a": "m_a", f"{metric}_b": "m_b"})
    both["diff"] = both["m_b"] - both["m_a"]
    only_a, only_b = len(ta) - len(both), len(tb) - len(both)
    note = None
    if only_a or only_b:
        note = (
            f"The grids differ: {len(both)} grid points are in both runs and compared; "
            f"{only_a} only in {a.path.name} and {only_b} only in {b.path.name} are left out."
        )
    return both, note


def compare_grid(runs: list[RunData | str]):
    """The difference heatmap per grid point (second − first run) and a note when the grids differ."""
    pair = _pair(runs)
    if pair is None:
        return figures.message_figure("start the dashboard with two runs to compare them"), ""
    a, b = pair
    metric = compare_metric(a, b)
    table, note = grid_difference(a, b, metric)
    if table.empty:
        return figures.message_figure(note or "the two runs share no grid point"), note or ""
    if metric in ("accuracy", "within_cutoff"):
        scale, unit, fmt = 100.0, f"Δ {metric.replace('_', ' ')} (percentage points)", "+.1f"
    else:
        scale, unit, fmt = 1.0, f"Δ {a.metrics[metric][1]}", "+.4f"
    fig = figures.grid_diff_figure(
        table, a.grid_columns, [a.grid_label(c) for c in a.grid_columns], a.path.name, b.path.name,
        metric, scale, unit, fmt,
    )  # fmt: skip
    return fig, note or f"All {len(table)} grid points are in both runs."


def compare_colour_options(runs: list[RunData | str]) -> list[str]:
    """What both runs' transform embeddings can be coloured by (options common to both)."""
    pair = _pair(runs)
    if pair is None:
        return []
    other = set(colour_options(pair[1], "point"))
    return [c for c in colour_options(pair[0], "point") if c in other]


SLICE_COLUMNS = ["slice", "conditions", "size", "errors", "error_rate", "coverage"]


def compare_side(runs: list[RunData | str], colour: str | None, top: int = 8):
    """Both runs' transform embeddings coloured by the same column, and both runs' top error slices."""
    pair = _pair(runs)
    if pair is None:
        msg = figures.message_figure("start the dashboard with two runs to compare them")
        return msg, msg, [], []
    options = compare_colour_options(runs)
    colour = colour if colour in options else (options[0] if options else None)
    shared = None
    if colour in pair[0].grid_columns:  # grid values get the same colour in both runs
        labels = {fmt_value(float(v)) for d in pair for v in d.values(colour)}
        shared = {v: i for i, v in enumerate(sorted(labels, key=figures._order))}
    figs = [
        embedding_figure(d, Filter(), "point", colour, f"{d.path.name}: transform embedding", shared)
        for d in pair
    ]
    rows = [[{k: r[k] for k in SLICE_COLUMNS} for r in slices_rows(d, None)[:top]] for d in pair]
    return figs[0], figs[1], rows[0], rows[1]
