"""Drive a dashboard over HTTP as browsers do, for its tests and load benchmark: serve an app on 127.0.0.1 in a
background thread (on the server ``proactiv serve`` runs, :class:`proactiv.dashboard.serve.Server`), build
callback requests from the app's own dependency list, and send many at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import dash

from proactiv.dashboard.data import Filter, RunData
from proactiv.dashboard.panels.bias import bias_options
from proactiv.dashboard.serve import LOCAL, THREADS, Server

CALLBACK_ROUTE = "/_dash-update-component"


@contextmanager
def served(app: dash.Dash, host: str = LOCAL, threads: int = THREADS) -> Iterator[str]:
    """Serve ``app`` on ``host`` at a free port from a background thread, as ``proactiv serve`` does; yields the
    base URL, stops on exit."""
    server = Server(app.server, host, 0, threads)
    # under load, waitress logs each time its open connections reach the limit (100; the rest wait in the listen
    # queue) and fall below it again: hundreds of lines that say the test works as meant
    logging.getLogger("waitress").setLevel(logging.ERROR)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.stop()
        thread.join(timeout=30)


def dependencies(url: str) -> list[dict]:
    """The app's callbacks as the page learns them (``/_dash-dependencies``)."""
    with urllib.request.urlopen(f"{url}/_dash-dependencies", timeout=30) as response:
        return json.loads(response.read())


def find(deps: list[dict], output: str) -> dict:
    """The dependency entry whose output list names ``output`` (``"id.property"``)."""
    hits = [d for d in deps if output in d["output"].strip(".").split("...")]
    if len(hits) != 1:
        raise KeyError(f"{output}: {len(hits)} callbacks write it")
    return hits[0]


def callback_body(dependency: dict, values: dict[str, object]) -> dict:
    """The JSON body dash-renderer posts for one callback: ``values`` maps ``"id.property"`` of its inputs and
    states to what the page holds (None when left out; a pattern-matched one, whose id is a JSON ``{…}``, takes
    the list of ``{"id", "property", "value"}`` entries the page would send, none when left out); every input
    counts as changed."""

    def props(items: list[dict]) -> list:
        keys = [f"{i['id']}.{i['property']}" for i in items]
        return [
            values.get(k, []) if i["id"].startswith("{") else {**i, "value": values.get(k)}
            for i, k in zip(items, keys, strict=True)
        ]

    outputs = [
        {"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
        for o in dependency["output"].strip(".").split("...")
    ]
    inputs = props(dependency["inputs"])
    return {
        "output": dependency["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": inputs,
        "state": props(dependency["state"]),
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in dependency["inputs"]],
    }


@dataclass(frozen=True)
class Answer:
    """One callback request's outcome: HTTP status (0: no answer), seconds, body (or the error)."""

    status: int
    seconds: float
    body: bytes


def post(url: str, body: dict, timeout: float = 120.0) -> Answer:
    """POST one callback request; an HTTP error is an answer with its status, a failed connection status 0."""
    request = urllib.request.Request(
        url + CALLBACK_ROUTE, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, time.perf_counter() - start, response.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, time.perf_counter() - start, err.read())
    except OSError as err:  # refused, reset or timed out
        return Answer(0, time.perf_counter() - start, str(err).encode())


def send_all(url: str, bodies: list[dict], concurrency: int, timeout: float = 120.0) -> list[Answer]:
    """POST every body, ``concurrency`` at a time, and collect the answers in order."""
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda body: post(url, body, timeout), bodies))


def main_callbacks(deps: list[dict], data: RunData) -> list[dict]:
    """Requests for the dashboard's main callbacks on run 0 (``data``), as a user's clicks make them: the
    summary, the overview (curves and heatmap), the embeddings, the error slices, the kept records and one
    record's detail, unfiltered and under a lasso over half the instances, and a bias map."""
    lasso = {"points": None, "instances": list(range(0, int(data.n_instances), 2)), "slice": None}
    kept = data.kept_records(Filter(), limit=1)
    record = {"instance": int(kept.instance.iloc[0]), "point": int(kept.point.iloc[0])} if len(kept) else None
    classes, _ = bias_options(data)
    cols, metric = data.grid_columns, next(iter(data.metrics))
    bodies = []
    for flt in (None, lasso):
        page = {"run.value": 0, "filter.data": flt, "heat-a.value": cols[0], "heat-b.value": cols[-1],
                "heat-metric.value": metric, "record.data": record}  # fmt: skip
        bodies += [callback_body(find(deps, out), page) for out in
                   ("curves.figure", "emb-points.figure", "slices.data", "kept.data")]  # fmt: skip
    bodies.append(callback_body(find(deps, "summary.children"), {"run.value": 0}))
    bodies.append(callback_body(find(deps, "interim.figure"), {"run.value": 0, "record.data": record}))
    if classes:
        bias = {"run.value": 0, "bias-class.value": classes[0], "bias-value.value": ""}
        bodies.append(callback_body(find(deps, "bias.figure"), bias))
    return bodies
