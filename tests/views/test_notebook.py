"""The walkthrough notebook runs offline from a fresh kernel and every figure cell shows a plotly figure."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).parents[2] / "examples" / "walkthrough.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"


@pytest.mark.slow
def test_walkthrough_notebook_runs_and_draws(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    figure_cells = [c for c in code if "pv.views." in c.source]
    assert len(figure_cells) == 6
    for cell in figure_cells:
        data = [
            o.get("data", {}) for o in cell.outputs if o.output_type in ("display_data", "execute_result")
        ]
        figures = [d[PLOTLY] for d in data if PLOTLY in d]
        assert figures and figures[0]["data"], cell.source  # a plotly figure with traces
    tables = [c for c in code if c.source.startswith(("breakpoints", "analysis.slices"))]
    assert all("text/html" in c.outputs[0]["data"] for c in tables)
