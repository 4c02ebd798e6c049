"""The dashboard of a monitor store (``proactiv serve STORE`` on a folder written by ``proactiv monitor``): one
page, the stream panel (:mod:`proactiv.dashboard.panels.stream`), in the dashboard's own look."""

from __future__ import annotations

import os
from collections.abc import Callable

import dash
from dash import html

from proactiv.dashboard.app import INDEX, _refuse
from proactiv.dashboard.panels import stream
from proactiv.monitor import MonitorStore, open_monitor

LOCAL = ("127.0.0.1", "localhost", "::1")


def build_monitor_app(store: MonitorStore | str | os.PathLike) -> dash.Dash:
    """The Dash app over one monitor store: the stream panel and its callbacks."""
    store = store if isinstance(store, MonitorStore) else open_monitor(store)
    app = dash.Dash(__name__, serve_locally=True, title="proactiv monitor", assets_ignore=".*", update_title=None,
                    on_error=_refuse)  # fmt: skip
    app.index_string = INDEX
    header = html.Div([html.H1(f"proactiv — monitored stream {store.stream.get('name', store.path.name)}")],
                      className="header")  # fmt: skip
    app.layout = html.Div([header, stream.layout(store)])
    stream.callbacks(app, store)
    return app


def serve_monitor(
    path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8050, say: Callable[[str], None] = print
) -> None:
    """Serve the stream page of the store at ``path`` (bound to this machine unless ``host`` says otherwise)."""
    app = build_monitor_app(path)
    if host not in LOCAL:
        say(f"warning: listening on {host}: anyone who can reach it can see this stream (no authentication)")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    say(f"proactiv monitor dashboard: http://{shown}:{port}/  (Ctrl+C to stop)")
    app.run(host=host, port=int(port), debug=False)
