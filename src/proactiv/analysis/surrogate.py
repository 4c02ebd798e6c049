"""Surrogate: an interpretable model of failure (or of ``loss_t``) over the conditions people understand — the
transform parameters of the grid, the instances' metadata (speaker, engine, gender …) and the desired class —
whose shape functions say how each condition drives failure and whose per-record contributions explain one
failure in those terms.

- **ebm** (default): an explainable boosting machine (interpret-core): one shape function per feature plus a
  few pairwise interaction terms (interpret's FAST picks them), each an additive term on the log-odds of
  failure (or on the loss); its band is ±1 standard deviation of the term over the EBM's outer bags.
- **gbm**: scikit-learn's histogram gradient boosting with SHAP values (``shap.TreeExplainer``), for users who
  want SHAP; its "shape" per feature is the SHAP dependence binned by value (mean, band 10–90 % of the records
  at that value); it has no pair terms. Categories enter the trees as their ordinal codes (SHAP's tree
  explainer does not read scikit-learn's native categorical splits).

Features: every grid column (numeric; an infinite value such as a clean SNR stands one largest gap beyond the
finite ones and is labelled ∞), the ``meta.*`` columns (numeric ones as numbers, the others as categories;
categories with a distinct value for more than half the instances — paths, speaker ids — and columns with one
value are left out, they could only memorise instances), and the group column as a category (``class`` in
classifier runs). The outcome is decided by the run schema: ``failure`` is ``NOT correct_t`` (a wrong class, or
an output outside the loss cutoff), ``loss`` is ``loss_t``; a run without an outcome can only use ``loss``.

Fidelity is measured on held-out *instances* (a seeded group split: the records of one instance are never both
trained on and tested): ROC AUC and accuracy against the base rate for failure, R² for loss, with a warning
when it is low. The fitted model is not stored: its contribution per term for every record of the run is (a
few float32 columns), which is all the views and :func:`explain_record` read, and avoids pickles that break
across library versions.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from proactiv.analysis.runview import AnalysisError, RunView, as_run, format_value, open_view, q
from proactiv.analysis.steps import Step, register
from proactiv.extras import require
from proactiv.store import Run, write_json, write_parquet

METHODS = ("ebm", "gbm")
OUTCOMES = ("failure", "loss")
#: below these held-out figures the surrogate's explanations are flagged as unreliable
LOW_AUC, LOW_R2 = 0.7, 0.3
#: a numeric feature with at most this many distinct values is shown per value, else in quantile bins
MAX_LEVELS = 32
BINS = 16
#: the label of a missing value (a numeric NaN or an empty category)
MISSING = "(missing)"
#: per-record table columns that are not terms
RECORD_COLUMNS = ("instance", "point", "observed", "predicted", "held_out", "trained")
LEVEL = "level:"


@dataclass
class Surrogate:
    """A fitted surrogate of a run (see the module docstring); every table is plain pandas.

    - ``importance``: ``feature``, ``importance`` (mean |contribution| over the run's records), ``kind``;
      the main terms only, largest first (pair terms are in ``interactions``);
    - ``shapes``: per feature and level (a value, a bin or a category): ``label``, ``value`` (NaN for
      categories), ``score`` (the term's contribution there), ``lower``/``upper`` (its band), ``count``,
      ``observed`` (the real failure rate or mean loss there);
    - ``interactions``: per pair term and pair of levels: ``score``, ``count`` and the term's ``importance``;
    - ``contributions``: per record: ``instance``, ``point``, ``observed``, ``predicted``, ``held_out``,
      ``trained``, one column per term and a ``level:<feature>`` column per feature (its level in ``shapes``);
    - ``fidelity``: ``metric``, ``score`` (held-out ROC AUC or R²), and ``accuracy``/``base_rate`` or ``mae``,
      the held-out and training sizes, and ``warning`` ("" when the fidelity is not low);
    - ``info``: the run's record count and the fit's settings.
    """

    method: str
    outcome: str
    target: str
    scale: str
    features: list[dict]
    importance: pd.DataFrame
    shapes: pd.DataFrame
    interactions: pd.DataFrame
    contributions: pd.DataFrame
    fidelity: dict
    intercept: float
    info: dict = field(default_factory=dict)

    @property
    def warning(self) -> str:
        return self.fidelity.get("warning", "")

    @property
    def terms(self) -> list[str]:
        skip = set(RECORD_COLUMNS)
        return [c for c in self.contributions.columns if c not in skip and not c.startswith(LEVEL)]

    def kind(self, feature: str) -> str:
        return next(f["kind"] for f in self.features if f["name"] == feature)

    def record(self, instance: int, point: int) -> pd.DataFrame:
        """One record's contributions: ``feature`` (a feature or a pair ``a & b``), ``value`` (its level's
        label), ``contribution``, largest |contribution| first; ``attrs`` hold the intercept, the surrogate's
        prediction and the observed outcome."""
        rows = self.contributions
        hit = rows[(rows.instance == int(instance)) & (rows.point == int(point))]
        if hit.empty:
            raise AnalysisError(
                f"the surrogate scored no record (instance={instance}, point={point}); its records have instances "
                f"{int(rows.instance.min())}–{int(rows.instance.max())}, points {int(rows.point.min())}–"
                f"{int(rows.point.max())}"
            )
        row = hit.iloc[0]
        labels = {
            f: dict(zip(part.level, part.label, strict=True)) for f, part in self.shapes.groupby("feature")
        }

        def label(feature: str) -> str:
            return str(labels.get(feature, {}).get(int(row[LEVEL + feature]), MISSING))

        out = []
        for term in self.terms:
            parts = term.split(" & ")
            out.append({"feature": term, "value": " & ".join(label(p) for p in parts),
                        "contribution": float(row[term])})  # fmt: skip
        table = pd.DataFrame(out, columns=["feature", "value", "contribution"])
        table = table.reindex(table.contribution.abs().sort_values(ascending=False, kind="stable").index)
        table = table.reset_index(drop=True)
        table.attrs.update(intercept=self.intercept, predicted=float(row.predicted), observed=float(row.observed),
                           scale=self.scale, instance=int(instance), point=int(point))  # fmt: skip
        return table

    def sentence(self) -> str:
        """The top drivers in words, e.g. "Failure rises most for meta.voice = v3 (+4.1 log-odds) and with
        noise.snr_db ≤ 0 (+2.2)"."""
        if self.importance.empty:
            return "The surrogate found no feature that changes the outcome."
        what = "Failure" if self.outcome == "failure" else "loss_t"
        parts = []
        top = self.importance.importance.iloc[0]
        for feature in self.importance.feature[:2][self.importance.importance[:2] >= 0.1 * top]:
            shape = self.shapes[self.shapes.feature == feature].sort_values("level")
            where, score = _where_high(feature, self.kind(feature), shape)
            parts.append(f"{where} ({score:+.2g}{' ' + self.scale if not parts else ''})")
        return f"{what} rises most {' and '.join(parts)}."

    # storage -------------------------------------------------------------------------------------------
    TABLES = ("importance", "shapes", "interactions", "contributions")

    def save(self, folder: Path) -> None:
        for name in self.TABLES:
            write_parquet(folder / f"surrogate_{name}.parquet", getattr(self, name))
        head = {
            k: getattr(self, k) for k in ("method", "outcome", "target", "scale", "features", "intercept")
        }
        head.update(fidelity=_json_safe(self.fidelity), info=self.info)
        write_json(folder / "surrogate.json", head)

    @classmethod
    def load(cls, folder: Path) -> Surrogate:
        head = json.loads((folder / "surrogate.json").read_text())
        head["fidelity"] = {k: (math.nan if v is None else v) for k, v in head["fidelity"].items()}
        tables = {n: pd.read_parquet(folder / f"surrogate_{n}.parquet") for n in cls.TABLES}
        return cls(**head, **tables)


def _json_safe(values: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def _where_high(feature: str, kind: str, shape: pd.DataFrame) -> tuple[str, float]:
    """Where a feature's shape is highest, in words (``with x ≤ 0``, ``for meta.voice = v3``), and that score."""
    best = shape.loc[shape.score.idxmax()]
    if kind == "numeric" and best.label != MISSING:
        shape = shape[shape.label != MISSING]
        up = (shape.score > 0).to_numpy()
        k = int(up.sum())
        labels = list(shape.label)
        if 0 < k < len(up) and up[:k].all():
            return f"with {feature} ≤ {labels[k - 1]}", float(best.score)
        if 0 < k < len(up) and up[-k:].all():
            return f"with {feature} ≥ {labels[-k]}", float(best.score)
        return f"at {feature} = {best.label}", float(best.score)
    return f"for {feature} = {best.label}", float(best.score)


# ------------------------------------------------------------------------------------------------ features
def _finite(x: np.ndarray) -> tuple[np.ndarray, float | None, float | None]:
    """``x`` with ±∞ replaced by a stand-in one largest gap beyond the finite values (one unit with a single
    finite value), and the stand-ins used (None where no such value occurs)."""
    finite = np.unique(x[np.isfinite(x)])
    if finite.size == 0:  # nothing finite to stand beside: ±∞ become ±1
        return np.where(np.isnan(x), np.nan, np.sign(x)), None, None
    gap = float(np.diff(finite).max()) if finite.size > 1 else 1.0
    top = float(finite.max() + gap) if np.isposinf(x).any() else None
    bottom = float(finite.min() - gap) if np.isneginf(x).any() else None
    out = np.where(np.isposinf(x), top or 0.0, np.where(np.isneginf(x), bottom or 0.0, x))
    return out, top, bottom


def _features(frame: pd.DataFrame, view: RunView) -> tuple[pd.DataFrame, list[dict]]:
    """The surrogate's input table (numeric columns as floats, categories as text) and each feature's name,
    record column, kind and ∞ stand-ins."""
    n_instances = frame.instance.nunique()
    data, features = {}, []

    def numeric(name: str, column: str) -> None:
        x, top, bottom = _finite(frame[column].to_numpy(dtype=float))
        if pd.Series(x).nunique() >= 2:
            data[name] = x
            features.append(
                {"name": name, "column": column, "kind": "numeric", "posinf": top, "neginf": bottom}
            )

    def categorical(name: str, column: str, most: int) -> None:
        s = frame[column].astype(object).where(frame[column].notna(), MISSING).astype(str)
        if 2 <= s.nunique() <= most:
            data[name] = s.to_numpy()
            features.append({"name": name, "column": column, "kind": "categorical"})

    for col in view.grid_columns:
        numeric(col, col)
    group = view.group_column
    for col in view.meta_columns:
        s = frame[col]
        if col == group:
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            numeric(col, col)
        else:
            categorical(col, col, max(2, n_instances // 2))
    if group is not None:
        categorical("class" if view.classifier else group, group, n_instances)
    return pd.DataFrame(data), features


def _levels(x: pd.Series, feature: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Each record's level of one feature and the levels (``level``, ``label``, ``value``): every value of a
    numeric feature with few of them, else quantile bins; every category, in natural order."""
    if feature["kind"] == "categorical":
        cats = pd.Series(pd.unique(x))
        number = pd.to_numeric(cats, errors="coerce")  # numbers in value order, then text, missing last
        cats = list(
            cats.iloc[np.lexsort((cats.to_numpy(str), number.fillna(0), number.isna(), cats == MISSING))]
        )
        index = {c: k for k, c in enumerate(cats)}
        table = pd.DataFrame({"level": range(len(cats)), "label": [str(c) for c in cats], "value": np.nan})
        return x.map(index).to_numpy(dtype=np.int16), table
    v = x.to_numpy(dtype=float)
    stand_in = {feature.get("posinf"): "∞", feature.get("neginf"): "-∞"}
    present = np.unique(v[~np.isnan(v)])
    if present.size <= MAX_LEVELS:
        labels = [stand_in.get(float(u)) or format_value(float(u)) for u in present]
        level = np.searchsorted(present, v)
        values = list(present)
    else:
        edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)))
        level = np.searchsorted(edges[1:-1], v, side="right")
        labels = [
            f"{format_value(lo)} to {format_value(hi)}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        values = [
            float(np.median(v[level == k])) if (level == k).any() else np.nan for k in range(len(labels))
        ]
    if np.isnan(v).any():
        level = np.where(np.isnan(v), len(labels), level)
        labels, values = [*labels, MISSING], [*values, np.nan]
    table = pd.DataFrame({"level": range(len(labels)), "label": labels, "value": values})
    return level.astype(np.int16), table


# ----------------------------------------------------------------------------------------------- learners
@dataclass
class _Fit:
    """What a learner leaves behind: its terms (name → feature names), every record's contribution per term,
    the intercept, and per main term a function giving the band's half-width at each of its levels (EBM)."""

    terms: list[tuple[str, tuple[str, ...]]]
    contributions: np.ndarray
    intercept: float
    half_width: Callable[[int, dict, pd.DataFrame], np.ndarray] | None = None


def _fit_ebm(x, y, train, features, classify, interactions, seed) -> _Fit:
    glassbox = require("interpret.glassbox", "explain", "the EBM surrogate")
    ExplainableBoostingClassifier = glassbox.ExplainableBoostingClassifier
    ExplainableBoostingRegressor = glassbox.ExplainableBoostingRegressor

    learner = ExplainableBoostingClassifier if classify else ExplainableBoostingRegressor
    types = ["continuous" if f["kind"] == "numeric" else "nominal" for f in features]
    # 8 outer bags (not 14), one job and at most 1000 boosting rounds: the band stays meaningful and the fit a few
    # seconds on 2 shared cores (the regressor's default 50 000 rounds took 20 s on 900 records, for R² +0.0001)
    model = learner(feature_names=list(x.columns), feature_types=types, interactions=int(interactions),
                    outer_bags=8, max_rounds=1000, n_jobs=1, random_state=seed)  # fmt: skip
    with warnings.catch_warnings():  # interpret warns that its own plots hide missing values; ours show them
        warnings.filterwarnings("ignore", message="Missing values detected", category=UserWarning)
        model.fit(x.iloc[train], y[train])
    names = list(x.columns)
    terms = [
        (t, tuple(names[i] for i in fs))
        for t, fs in zip(model.term_names_, model.term_features_, strict=True)
    ]
    explained = model.explain_global()

    def half_width(term: int, feature: dict, levels: pd.DataFrame) -> np.ndarray:
        """±1 standard deviation over the outer bags at each level, read from the term's bins."""
        data = explained.data(term)
        if data.get("upper_bounds") is None:
            return np.full(len(levels), np.nan)
        half = np.asarray(data["upper_bounds"], dtype=float) - np.asarray(data["scores"], dtype=float)
        if feature["kind"] == "numeric":
            cuts = np.asarray(data["names"][1:-1], dtype=float)
            at = np.searchsorted(cuts, levels.value.to_numpy(dtype=float), side="right")
            return np.where(levels.value.isna(), np.nan, half[np.clip(at, 0, len(half) - 1)])
        where = {str(n): k for k, n in enumerate(data["names"])}
        return np.asarray([half[where[lab]] if lab in where else np.nan for lab in levels.label])

    return _Fit(terms, model.eval_terms(x), float(np.ravel(model.intercept_)[0]), half_width)


def _fit_gbm(x, y, train, features, classify, seed) -> _Fit:
    shap = require("shap", "explain", "the GBM surrogate's SHAP values")
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    codes = pd.DataFrame({
        f["name"]: (x[f["name"]] if f["kind"] == "numeric" else
                    pd.Categorical(x[f["name"]], categories=sorted(pd.unique(x[f["name"]]))).codes).astype(float)
        for f in features
    })  # fmt: skip
    learner = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    model = learner(max_iter=200, max_leaf_nodes=15, random_state=seed).fit(codes.iloc[train], y[train])
    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(codes), dtype=float).reshape(len(codes), -1)
    terms = [(f["name"], (f["name"],)) for f in features]
    return _Fit(terms, values, float(np.ravel(explainer.expected_value)[0]))


# ------------------------------------------------------------------------------------------------- fitting
def _outcome(view: RunView, outcome: str | None) -> tuple[str, str]:
    """The outcome (``failure`` or ``loss``) and its SQL over records, decided by the run schema."""
    if outcome is None:
        outcome = "failure" if view.correct_metric is not None else "loss"
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome={outcome!r}: expected one of {', '.join(OUTCOMES)} (or None: by the run)")
    if outcome == "loss":
        return outcome, "loss_t"
    if view.correct_metric is None:
        raise AnalysisError(
            f"run {view.run.path} has no outcome (neither labels nor a loss cutoff): no record fails; "
            "use outcome='loss' to explain loss_t"
        )
    return outcome, "NOT correct_t"


def _split(instances: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """Which instances are held out (a seeded draw of ``test_size`` of them, at least one, at most all but one)."""
    ids = np.unique(instances)
    if len(ids) < 4:
        raise AnalysisError(
            f"the surrogate needs at least 4 instances to hold some out for its fidelity; the run has {len(ids)}"
        )
    n_test = min(len(ids) - 1, max(1, round(test_size * len(ids))))
    return np.random.default_rng(seed).choice(ids, n_test, replace=False)


def _fidelity(classify: bool, observed: np.ndarray, predicted: np.ndarray, n_test_instances: int) -> dict:
    """Held-out fidelity and, when low, the warning the views and the report show."""
    from sklearn.metrics import mean_absolute_error, r2_score, roc_auc_score

    out = {"n_test": int(len(observed)), "n_test_instances": int(n_test_instances)}
    where = f"{len(observed)} held-out records of {n_test_instances} instances"
    if classify:
        rate = float(observed.mean())
        both = 0 < rate < 1
        out.update(metric="roc_auc", score=float(roc_auc_score(observed, predicted)) if both else math.nan,
                   accuracy=float(((predicted > 0.5) == observed).mean()), base_rate=max(rate, 1 - rate))  # fmt: skip
        if not both:
            out["warning"] = (f"fidelity unknown: the {where} all {'fail' if rate else 'pass'}, so no ROC AUC "
                              "can be measured")  # fmt: skip
        elif out["score"] < LOW_AUC:
            out["warning"] = (f"low fidelity: on the {where} the surrogate ranks failures with ROC AUC "
                              f"{out['score']:.2f} (< {LOW_AUC}); its shapes do not explain failure well")  # fmt: skip
        else:
            out["warning"] = ""
        return out
    out.update(metric="r2", score=float(r2_score(observed, predicted)),
               mae=float(mean_absolute_error(observed, predicted)))  # fmt: skip
    out["warning"] = (f"low fidelity: on the {where} the surrogate explains R² = {out['score']:.2f} (< {LOW_R2}) "
                      "of loss_t; its shapes do not explain the loss well") if out["score"] < LOW_R2 else ""  # fmt: skip
    return out


def surrogate(
    run: Run | str | os.PathLike | RunView,
    method: str = "ebm",
    outcome: str | None = "failure",
    max_records: int = 20000,
    interactions: int = 3,
    test_size: float = 0.25,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> Surrogate:
    """Fit an interpretable surrogate of a run's failures (``outcome="failure"``: ``NOT correct_t``) or of its
    ``loss_t`` (``"loss"``; None: failure when the run has an outcome, else loss) over its transform parameters,
    metadata and class: ``method="ebm"`` (an explainable boosting machine with ``interactions`` pair terms) or
    ``"gbm"`` (gradient-boosted trees with SHAP values). At most ``max_records`` records of the training
    instances are fitted (a seeded sample); ``test_size`` of the instances are held out for the fidelity;
    ``progress`` is called with the fraction done."""
    view = run if isinstance(run, RunView) else open_view(run)
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")
    if not int(max_records) >= 100:
        raise ValueError(f"max_records={max_records!r}: expected at least 100 training records")
    if not 0 < float(test_size) < 1:
        raise ValueError(f"test_size={test_size!r}: expected a fraction of the instances between 0 and 1")
    tick = progress or (lambda f: None)
    outcome, target = _outcome(view, outcome)
    classify = outcome == "failure"
    columns = dict.fromkeys(["instance", "point", *view.grid_columns, *view.meta_columns])
    columns.update(dict.fromkeys([view.group_column] if view.group_column else []))
    frame = view.query(f"SELECT {', '.join(q(c) for c in columns)}, ({target}) AS _y FROM records "
                       "ORDER BY instance, point")  # fmt: skip
    y = frame.pop("_y").to_numpy(dtype=float)
    if not classify and not np.isfinite(y).all():
        frame, y = frame[np.isfinite(y)].reset_index(drop=True), y[np.isfinite(y)]
    x, features = _features(frame, view)
    if not features:
        raise AnalysisError(
            f"run {view.run.path}: no transform parameter or metadata varies; nothing to explain"
        )
    held = np.isin(frame.instance.to_numpy(), _split(frame.instance.to_numpy(), test_size, seed))
    train = np.nonzero(~held)[0]
    if len(train) > max_records:  # a seeded sample keeps the fit to seconds on 100 k-record runs
        train = np.sort(np.random.default_rng(seed).choice(train, int(max_records), replace=False))
    if classify and len(np.unique(y[train])) < 2:
        state = "fails" if y[train].all() else "passes"
        raise AnalysisError(
            f"run {view.run.path}: every training record {state}; there is no failure to explain"
        )
    tick(0.1)
    if method == "ebm":
        fit = _fit_ebm(x, y, train, features, classify, interactions, seed)
    else:
        fit = _fit_gbm(x, y, train, features, classify, seed)
    tick(0.8)
    raw = fit.intercept + fit.contributions.sum(1)
    predicted = 1 / (1 + np.exp(-raw)) if classify else raw
    fidelity = _fidelity(classify, y[held], predicted[held], len(np.unique(frame.instance[held])))
    fidelity.update(n_train=int(len(train)), n_train_instances=int(frame.instance.iloc[train].nunique()))
    records = pd.DataFrame({"instance": frame.instance.to_numpy(), "point": frame.point.to_numpy(),
                            "observed": y, "predicted": predicted, "held_out": held,
                            "trained": np.isin(np.arange(len(y)), train)})  # fmt: skip
    for k, (term, _) in enumerate(fit.terms):
        records[term] = fit.contributions[:, k].astype(np.float32)
    shapes, index = [], {}
    for f in features:
        level, table = _levels(x[f["name"]], f)
        records[LEVEL + f["name"]] = level
        index[f["name"]] = level
        shapes.append(table.assign(feature=f["name"]))
    main = {names[0]: k for k, (term, names) in enumerate(fit.terms) if len(names) == 1}
    shape_rows, importance = [], []
    for table in shapes:
        name = table.feature.iloc[0]
        c = fit.contributions[:, main[name]]
        stats = pd.DataFrame({"level": index[name], "c": c, "y": y}).groupby("level")
        table = table.set_index("level").assign(score=stats.c.mean(), count=stats.size(), observed=stats.y.mean(),
                                                 lo=stats.c.quantile(0.1), hi=stats.c.quantile(0.9))  # fmt: skip
        table = table.dropna(subset=["score"]).reset_index()
        feature = next(f for f in features if f["name"] == name)
        if fit.half_width is not None:
            half = fit.half_width(main[name], feature, table)
            table["lower"], table["upper"] = table.score - half, table.score + half
        else:
            table["lower"], table["upper"] = table.lo, table.hi
        shape_rows.append(table.drop(columns=["lo", "hi"]))
        importance.append({"feature": name, "importance": float(np.abs(c).mean()), "kind": feature["kind"]})
    pairs = []
    for k, (term, names) in enumerate(fit.terms):
        if len(names) != 2:
            continue
        a, b = names
        c = fit.contributions[:, k]
        grid = (
            pd.DataFrame({"level_a": index[a], "level_b": index[b], "c": c}).groupby(["level_a", "level_b"]).c
        )
        part = grid.agg(["mean", "size"]).reset_index().rename(columns={"mean": "score", "size": "count"})
        pairs.append(part.assign(term=term, feature_a=a, feature_b=b, importance=float(np.abs(c).mean())))
    shapes_table = pd.concat(shape_rows, ignore_index=True)
    interactions_table = _label_pairs(pd.concat(pairs, ignore_index=True) if pairs else None, shapes_table)
    importance_table = pd.DataFrame(importance).sort_values("importance", ascending=False, ignore_index=True)
    tick(1.0)
    return Surrogate(
        method=method, outcome=outcome, target=target,
        scale="log-odds of failure" if classify else "loss_t",
        features=features, importance=importance_table,
        shapes=shapes_table[["feature", "level", "label", "value", "score", "lower", "upper", "count", "observed"]],
        interactions=interactions_table, contributions=records, fidelity=fidelity, intercept=fit.intercept,
        info={"n_records": int(len(y)), "max_records": int(max_records), "interactions": int(interactions),
              "seed": int(seed), "test_size": float(test_size)},
    )  # fmt: skip


def _label_pairs(pairs: pd.DataFrame | None, shapes: pd.DataFrame) -> pd.DataFrame:
    """The pair table with each level's label (an empty table with the same columns when there are no pairs)."""
    cols = ["term", "feature_a", "feature_b", "level_a", "level_b", "label_a", "label_b", "score", "count",
            "importance"]  # fmt: skip
    if pairs is None:
        return pd.DataFrame(columns=cols)
    labels = shapes.set_index(["feature", "level"]).label
    pairs["label_a"] = [labels[(f, int(v))] for f, v in zip(pairs.feature_a, pairs.level_a, strict=True)]
    pairs["label_b"] = [labels[(f, int(v))] for f, v in zip(pairs.feature_b, pairs.level_b, strict=True)]
    return pairs.sort_values(["importance", "term", "level_a", "level_b"], ascending=[False, True, True, True],
                             ignore_index=True)[cols]  # fmt: skip


def explain_record(
    run: Run | str | os.PathLike, instance: int, point: int, result: Surrogate | None = None
) -> pd.DataFrame:
    """One record's failure in the surrogate's terms: ``feature``, ``value``, ``contribution`` (to the log-odds
    of failure, or to loss_t), largest |contribution| first. ``result``: the surrogate to use (default: the
    stored one of the run, else one fitted now with the default settings and not stored)."""
    if result is None:
        from proactiv.analysis.pipeline import load_analysis

        run = as_run(run)
        result = load_analysis(run)["surrogate"] or surrogate(run, outcome=None)
    return result.record(instance, point)


class SurrogateStep(Step):
    """The surrogate of failure (:func:`surrogate`), stored as Parquet tables and a JSON header."""

    name = "surrogate"
    title = "Surrogate: what drives failure"
    command = "surrogate"
    # ``learner``, not ``method``: a flat ``method=`` setting already goes to the embeddings
    settings = {"learner": "ebm", "outcome": None, "max_records": 20000, "interactions": 3, "seed": 0}
    files = ("surrogate.json", *(f"surrogate_{n}.parquet" for n in Surrogate.TABLES))

    def compute(self, ctx, settings, progress):
        return surrogate(ctx.view, settings["learner"], settings["outcome"], settings["max_records"],
                             settings["interactions"], seed=settings["seed"], progress=progress)  # fmt: skip

    def save(self, result: Surrogate, folder: Path) -> None:
        result.save(folder)

    def load(self, folder: Path) -> Surrogate:
        return Surrogate.load(folder)

    def note(self, result: Surrogate) -> str:
        f = result.fidelity
        pairs = result.interactions.term.nunique()
        text = (f"{result.method.upper()} of {result.outcome} ({result.target}) on {f['n_train']} records of "
                f"{f['n_train_instances']} instances (of {result.info['n_records']} records; at most "
                f"{result.info['max_records']} fitted), {len(result.features)} features"
                + (f", {pairs} pair terms" if pairs else "")
                + f"; held-out {f['metric']} {f['score']:.3g} on {f['n_test']} records of {f['n_test_instances']} "
                f"instances")  # fmt: skip
        if "accuracy" in f:
            text += f" (accuracy {f['accuracy']:.3g} vs base rate {f['base_rate']:.3g})"
        return text + (f". {result.warning}" if result.warning else "")


register(SurrogateStep())
