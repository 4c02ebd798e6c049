"""The Dash app: the page shell (header, run picker, filter bar, the stores the panels share) around a tab per
group of registered panels (:mod:`proactiv.dashboard.panels.registry`), each panel's callbacks registered with it.

Assets are served locally (no CDN), so the dashboard works offline. A run that cannot be opened is shown as
a message in the page instead of its views.
"""

from __future__ import annotations

from pathlib import Path

import dash
from dash import dcc, html
from dash.exceptions import DependencyException
from werkzeug.exceptions import BadRequest, NotFound

from proactiv.dashboard.data import RunData, open_runs
from proactiv.dashboard.panels import Panel, PanelContext, registered_panels, shared
from proactiv.dashboard.panels.shared import EMPTY_FILTER, dropdown

#: the page's stylesheet, inlined so the app needs no asset files (nothing to lose when packaged)
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f4f6f9; color: #1d2733; }
.header { padding: 12px 20px 4px; }
.header h1 { font-size: 20px; margin: 0 0 6px; color: #1f4e79; }
.bar { display: flex; align-items: flex-end; gap: 16px; padding: 6px 20px 10px; }
.bar button { padding: 6px 12px; border: 1px solid #9fb3c8; background: white; border-radius: 4px; cursor: pointer; }
.filter { flex: 1; font-size: 14px; color: #394b59; padding-bottom: 8px; }
.card { background: white; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.12); margin: 12px 20px; padding: 10px 16px; }
.card h3 { margin: 4px 0 8px; font-size: 16px; color: #1f4e79; }
.row { display: flex; gap: 12px; }
.half { flex: 1; min-width: 0; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 4px 16px; font-size: 13px; }
.kv { font-size: 13px; margin: 2px 0; }
.kv .k { font-weight: 600; margin-right: 8px; color: #52606d; }
.note { font-size: 12px; color: #6b7785; margin: 4px 0; }
.error { background: #fdecea; color: #8a1c12; border: 1px solid #f5c2bd; border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
label { font-size: 12px; color: #52606d; }
audio { height: 32px; vertical-align: middle; }
"""

INDEX = (
    "<!DOCTYPE html><html><head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}<style>"
    + CSS
    + "</style></head><body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer></body></html>"
)


#: every tab takes the width of its label: many tabs wrap to a second row instead of overlapping
TAB_STYLE = {"flex": "1 0 auto", "padding": "6px 14px"}


def _tabs(ctx: PanelContext) -> tuple[list[dcc.Tab], list[tuple[Panel, PanelContext]]]:
    """The tabs of the registered panels shown for these runs (each panel a card in its tab), in order, and
    those panels with the context each draws from."""
    tabs: dict[str, dcc.Tab] = {}
    shown = []
    for panel in registered_panels():
        own = ctx.of(panel)
        content = panel.layout(own)
        if content is None:
            continue
        card = html.Div([html.H3(panel.card_title(own)), *(content if isinstance(content, list) else [content])],
                        className="card", id=f"view-{panel.name}")  # fmt: skip
        if panel.tab not in tabs:
            tabs[panel.tab] = dcc.Tab(label=panel.tab_label, value=panel.tab, id=f"tab-{panel.tab}", children=[],
                                      style=TAB_STYLE, selected_style=TAB_STYLE)  # fmt: skip
        tabs[panel.tab].children.append(card)
        shown.append((panel, own))
    return list(tabs.values()), shown


def _page(runs: list[RunData | str], tabs: list[dcc.Tab]) -> html.Div:
    """The header (with a message per run that could not be opened), the run picker and filter bar, the stores
    the panels share, and the tabs."""
    errors = [html.Div(r, className="error") for r in runs if isinstance(r, str)]
    header = html.Div([html.H1("proactiv — where does the model break?"), *errors], className="header")
    usable = [(i, r) for i, r in enumerate(runs) if not isinstance(r, str)]
    if not usable:
        return html.Div(
            [header, html.Div("No run could be opened; see the messages above.", className="error")]
        )
    picker = dropdown(
        "run", [{"label": r.path.name, "value": i} for i, r in usable], usable[0][0], "run", "320px"
    )
    bar = html.Div(
        [
            picker,
            html.Span(id="filter-text", className="filter"),
            html.Button("Clear filters", id="clear", n_clicks=0),
        ],
        className="bar",
    )
    return html.Div(
        [
            header,
            bar,
            dcc.Store(id="filter", data=dict(EMPTY_FILTER)),
            dcc.Store(id="record", data=None),
            dcc.Tabs(
                id="tabs", value=tabs[0].value if tabs else None, children=tabs, style={"flexWrap": "wrap"}
            ),
        ]
    )


def _refuse(err: Exception) -> None:
    """A callback's error: a value the page never sends (a run index, record, column or filter that is not the
    run's: the panels raise ValueError, or TypeError on the wrong kind of value) is a bad request (400) naming
    it; anything else stays a server error."""
    if isinstance(err, ValueError | TypeError):
        raise BadRequest(f"invalid callback input: {err}") from None
    raise err


def _not_found(_err: DependencyException) -> NotFound:
    """A component file Dash did not register (e.g. a ``..`` path) is simply not there."""
    return NotFound()


def build_app(runs: list[RunData | str | Path], compute: bool = True) -> dash.Dash:
    """The Dash app over opened runs or run directories (opened here, computing missing analyses): a tab per
    registered panel group, each panel's callbacks registered when it is shown. It serves Dash's own registered
    files and the callbacks' answers, nothing from the file system by name."""
    runs = [r if isinstance(r, RunData) else open_runs([r], compute=compute)[0] for r in runs]
    app = dash.Dash(
        __name__, serve_locally=True, title="proactiv dashboard", assets_ignore=".*", update_title=None,
        on_error=_refuse,
    )  # fmt: skip
    app.server.register_error_handler(DependencyException, _not_found)
    app.index_string = INDEX
    ctx = PanelContext(tuple(runs))
    tabs, shown = _tabs(ctx) if ctx.runs else ([], [])
    app.layout = _page(runs, tabs)
    if shown:
        shared.callbacks(app, ctx)
    for panel, own in shown:
        if panel.callbacks is not None:
            panel.callbacks(app, own)
    return app
