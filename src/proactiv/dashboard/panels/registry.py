"""The dashboard's panels, registered by name one floor above the steps: a panel module registers its card — the
tab it sits in, its layout and its callbacks — and the app loops over the registry. A step's tab registers
against the step's name (:func:`register_step_tab`), so a new analysis reaches the dashboard without an edit of
the app; step tabs follow the run's own panels, in the step registry's (dependency) order. Installed packages
register theirs through the entry-point group ``proactiv.panels`` (:mod:`proactiv.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from proactiv.analysis import StepContext, get, registered
from proactiv.dashboard.data import RunData
from proactiv.dashboard.panels.shared import pick
from proactiv.plugins import load_entry_points

#: the entry-point group of other installed packages' panels
ENTRY_POINTS = "proactiv.panels"
#: the default ``order``: after the run's own panels (overview … bias maps), before the what-if studio and compare
STEP_ORDER = 50.0


@dataclass(frozen=True)
class PanelContext:
    """What a panel draws from: ``runs`` (the runs that could be opened), ``first`` (the run the layout is drawn
    from), ``run_of(index)`` (the run the picker's value names, validated) and, for a step's panel, the step's
    stored ``result`` for the first run and a ``step_context`` over that run."""

    opened: tuple[RunData | str, ...]
    step: str | None = None
    #: shared by the contexts of one app (:meth:`of` copies the reference)
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def runs(self) -> list[RunData]:
        return [r for r in self.opened if isinstance(r, RunData)]

    @property
    def first(self) -> RunData:
        return self.runs[0]

    def run_of(self, index) -> RunData:
        return pick(list(self.opened), index)

    @property
    def result(self) -> Any:
        return None if self.step is None else self.first.analysis[self.step]

    @property
    def step_context(self) -> StepContext:
        """A step context over the first run, one per app: a task or model it rebuilds is rebuilt once."""
        if "step_context" not in self.cache:
            data = self.first
            self.cache["step_context"] = StepContext(data.run, view=data.view, results=data.analysis.results)
        return self.cache["step_context"]

    def of(self, panel: Panel) -> PanelContext:
        """The context ``panel`` draws from (its step's result)."""
        return replace(self, step=panel.step)


#: ``layout(ctx)``: the card's content (a component or a list of them); None: not shown for these runs
Layout = Callable[[PanelContext], Any]
#: ``callbacks(app, ctx)``: registers the Dash callbacks of the panel (only when it is shown)
Callbacks = Callable[[Any, PanelContext], None]


@dataclass(frozen=True)
class Panel:
    """One card of the dashboard (id ``view-<name>``) in the tab ``tab`` (id ``tab-<tab>``; panels may share a
    tab), presenting the step ``step`` or the run itself (None). ``order`` places tabs (by their first panel)
    and the panels within a tab; ``title`` may be a function of the context (e.g. naming the runs)."""

    name: str
    tab: str
    tab_label: str
    title: str | Callable[[PanelContext], str]
    layout: Layout
    callbacks: Callbacks | None = None
    step: str | None = None
    order: float = STEP_ORDER

    def card_title(self, ctx: PanelContext) -> str:
        return self.title(ctx) if callable(self.title) else self.title


_PANELS: dict[str, Panel] = {}


def register_panel(
    name: str,
    *,
    tab: str,
    layout: Layout,
    callbacks: Callbacks | None = None,
    tab_label: str | None = None,
    title: str | Callable[[PanelContext], str] | None = None,
    step: str | None = None,
    order: float = STEP_ORDER,
) -> Panel:
    """Add a panel; a step's panel takes the step's title for its card and the title up to its colon for its
    tab unless given. Refused when a panel of that name is registered."""
    if name in _PANELS:
        raise ValueError(f"a dashboard panel named {name!r} is already registered; unregister_panel it first")
    if step is not None:
        full = get(step).title  # an unknown step: KeyError naming the registered ones
        title = full if title is None else title
        tab_label = full.split(":")[0] if tab_label is None else tab_label
    if title is None or tab_label is None:
        raise ValueError(f"panel {name!r} presents no step: give it a title and a tab label")
    _PANELS[name] = Panel(name, tab, tab_label, title, layout, callbacks, step, order)
    return _PANELS[name]


def register_step_tab(
    step: str,
    draw: Callable[[Any, StepContext], Any],
    callbacks: Callbacks | None = None,
    **options,
) -> Panel:
    """Register a tab of its own (value ``step-<step>``) for ``step``: ``draw(result, step_context)`` makes its
    content from the first run's stored result; no tab when the run has none or ``draw`` returns None.
    ``options``: those of :func:`register_panel` (``name``, default the step's; ``title``, ``order`` …)."""

    def layout(ctx: PanelContext):
        result = ctx.result
        return None if result is None else draw(result, ctx.step_context)

    options.setdefault("name", step)
    return register_panel(tab=f"step-{step}", layout=layout, callbacks=callbacks, step=step, **options)


def unregister_panel(name: str) -> None:
    """Remove a panel (e.g. one a test registered)."""
    if _PANELS.pop(name, None) is None:
        raise KeyError(f"no dashboard panel {name!r}; registered: {', '.join(_PANELS)}")


def registered_panels() -> list[Panel]:
    """Every panel (plug-ins' loaded first) whose step (if any) is registered, by ``order``; step panels of one
    order in the step registry's order, others in registration order."""
    ranks = {s.name: k for k, s in enumerate(registered())}
    load_entry_points(ENTRY_POINTS)
    live = [p for p in _PANELS.values() if p.step is None or p.step in ranks]
    return sorted(live, key=lambda p: (p.order, ranks.get(p.step, -1)))
