"""Serving: loopback by default, a warning for any other address, and the URL to open."""

from proactiv.dashboard.serve import host_warning, url


def test_serve_binds_locally_and_warns_otherwise():
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert "no authentication" in host_warning("0.0.0.0")
    assert url("0.0.0.0", 8050) == "http://127.0.0.1:8050/" and url("::1", 9) == "http://::1:9/"


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
