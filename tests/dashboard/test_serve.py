"""Serving: on waitress, loopback by default, any other address only when asked for as public (and then who
can reach it is said), and the URL to open."""

import threading
import urllib.request

import pytest

from proactiv.dashboard.serve import Server, host_warning, is_loopback, reachable_at, serve, url


def test_serve_binds_locally_and_warns_otherwise():
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert host_warning("::1") is None and is_loopback("127.0.0.2") and not is_loopback("0.0.0.0")
    warning = host_warning("0.0.0.0", 8051)
    assert "no authentication" in warning
    assert all(f"http://{a}:8051/" in warning for a in reachable_at("0.0.0.0"))
    assert "127.0.0.1" not in reachable_at("0.0.0.0") and reachable_at("10.1.2.3") == ["10.1.2.3"]
    assert url("0.0.0.0", 8050) == "http://127.0.0.1:8050/" and url("::1", 9) == "http://[::1]:9/"


def test_another_address_is_refused_unless_public():
    with pytest.raises(ValueError, match="add --public"):
        serve([], host="0.0.0.0")


def test_the_server_answers_and_stops():
    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    server = Server(hello, port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10) as answer:
        assert answer.read() == b"hello" and answer.headers["Server"] == "proactiv"
    server.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    taken = Server(hello, port=0)
    with pytest.raises(
        OSError, match=f"cannot listen on http://127.0.0.1:{taken.port}/: Address already in use"
    ):
        Server(hello, port=taken.port)


def _no_serving(monkeypatch, opened: list):
    """Record what ``proactiv serve`` opens, and serve nothing."""
    import proactiv.dashboard.data as data
    import proactiv.dashboard.serve as serve

    monkeypatch.setattr(
        data, "open_runs", lambda paths, *a, **k: opened.extend(paths) or ["run"] * len(paths)
    )
    monkeypatch.setattr(serve, "serve", lambda *a, **k: None)


def test_serve_refuses_a_folder_that_is_neither_a_run_nor_holds_runs(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from proactiv.cli import app

    opened = []
    _no_serving(monkeypatch, opened)
    folder = tmp_path / "photos"
    (folder / "2024" / "deep").mkdir(parents=True)
    (folder / "2024" / "deep" / "run.json").write_text("{}")  # below the immediate children: not looked for
    (folder / "notes.txt").write_text("not a run")
    result = CliRunner().invoke(app, ["serve", str(folder)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and opened == []
    assert f"{folder}: neither a run nor a folder of runs" in lines[0] and "run.json" in lines[0]


def test_serve_takes_a_run_or_a_folder_of_runs(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from proactiv.cli import app
    from proactiv.store import run_dirs

    folder = tmp_path / "runs"
    for name in ("b", "a", "c"):
        (folder / name).mkdir(parents=True)
        if name != "c":
            (folder / name / "run.json").write_text("{}")
    assert run_dirs(folder) == [folder / "a", folder / "b"] and run_dirs(folder / "a") == [folder / "a"]
    opened = []
    _no_serving(monkeypatch, opened)
    result = CliRunner().invoke(app, ["serve", str(folder), str(folder / "b")])
    assert result.exit_code == 0 and opened == [folder / "a", folder / "b", folder / "b"]
    assert "serving 3 runs: a, b, b" in result.output
