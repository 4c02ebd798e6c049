"""The README's Python quickstart runs as written, on a tiny model, in the spelling the package asks for."""

import re
import warnings
from pathlib import Path

import torch
from torch import nn

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block(after: str) -> str:
    """The first ```python block of the README after the heading ``after``."""
    text = README.read_text()
    start = text.index(after)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_the_python_api_quickstart_runs(tmp_path, monkeypatch):
    code = python_block("## The Python API")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 3)).eval()  # what the reader brings: a model, inputs, labels
    inputs = torch.randn(6, 8)
    labels = torch.arange(6) % 3
    monkeypatch.chdir(tmp_path)  # the block writes runs/ where it runs
    scope = {"model": model, "inputs": inputs, "labels": labels}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=DeprecationWarning, module="proactiv")
        warnings.filterwarnings("error", message=r"sweep\(", category=DeprecationWarning)
        exec(compile(code, str(README), "exec"), scope)
    assert len(scope["run"].records) == 6 * 8 and (tmp_path / "runs" / "mine2" / "run.json").exists()
