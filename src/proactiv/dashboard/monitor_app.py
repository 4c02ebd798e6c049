"""The dashboard of a monitor store (``proactiv serve STORE`` on a folder written by ``proactiv monitor``): one
page, the stream panel (:mod:`proactiv.dashboard.panels.stream`), in the dashboard's own look."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import dash
from dash import html

from proactiv.dashboard.app import INDEX, _refuse
from proactiv.dashboard.panels import stream
from proactiv.dashboard.serve import LOCAL, THREADS, Server, host_warning, is_loopback, public_refusal, url
from proactiv.monitor import MonitorStore, open_monitor


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
    path: str | os.PathLike,
    host: str = LOCAL,
    port: int = 8050,
    say: Callable[[str], None] = print,
    public: bool = False,
    threads: int = THREADS,
) -> None:
    """Serve the stream page of the store at ``path`` as :func:`proactiv.dashboard.serve.serve` serves runs: on
    waitress, a ``host`` other than a loopback address refused (ValueError) unless ``public``."""
    if not public and not is_loopback(host):
        raise ValueError(public_refusal(host))
    server = Server(build_monitor_app(path).server, host, port, threads)
    warning = host_warning(host, server.port)
    if warning:
        say(f"warning: {warning}")
    say(
        f"proactiv monitor dashboard: {url(host, server.port)}  (waitress, {threads} threads; Ctrl+C to stop)"
    )
    sys.stdout.flush()
    server.run()
