"""The docs site builds in strict mode, and the code of its tutorials (and of the README) runs as written.

A page runs as one script, its blocks in order, in a fresh interpreter in an empty folder: ``python`` blocks as
they are, ``bash`` blocks of the tutorials through ``bash -e``. A block titled with a file name
(```` ```python title="my_model.py" ````) is written to that file instead of run; a block titled "Needs …" says
what it needs that the docs test does not have (the demo's runs, data you download) and is not run.
"""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: pages whose every block runs: the tutorials, and the concept page that walks the Python API
RUN_PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (DOCS / "tutorials").glob("*.md")) + [
    "docs/concepts/method.md",
    "README.md",
]
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)
TITLE = re.compile(r'title="([^"]*)"')
FILE_NAME = re.compile(r"^[\w.-]+\.\w+$")


def page_script(page: str) -> str:
    """The Python script that runs ``page``'s blocks in order."""
    lines = [
        "import pathlib, subprocess, warnings",
        # the docs use today's spelling: a keyword pv.sweep took before is an error here
        "warnings.filterwarnings('error', message=r'sweep\\(', category=DeprecationWarning)",
        "def _sh(code):",
        "    subprocess.run(['bash', '-euo', 'pipefail', '-c', code], check=True)",
    ]
    shell = page.startswith("docs/tutorials/")
    for lang, attrs, body in FENCE.findall((ROOT / page).read_text()):
        title = TITLE.search(attrs)
        title = title.group(1) if title else ""
        if FILE_NAME.match(title):
            lines.append(f"pathlib.Path({title!r}).write_text({body!r})")
        elif title.startswith("Needs"):
            continue
        elif lang == "python":
            lines.append(body)
        elif lang == "bash" and shell:
            lines.append(f"_sh({body!r})")
    return "\n".join(lines) + "\n"


def test_every_tutorial_page_is_run():
    assert len(RUN_PAGES) >= 7, RUN_PAGES  # five tutorials, the method page, the README
    for page in RUN_PAGES:
        assert "```python" in (ROOT / page).read_text(), f"{page} has no Python to run"


def test_a_page_runs_its_blocks_in_order_and_writes_titled_files():
    script = page_script("docs/tutorials/contracts.md")
    assert script.index("pathlib.Path('CHECKS.yaml').write_text(") < script.index("_sh('proactiv check")
    # a block titled "Needs …" is shown, not run
    assert "pip install" not in page_script("docs/tutorials/pretrained-package.md")


def _run_page(page: str, folder: Path) -> subprocess.CompletedProcess:
    script = folder / "page.py"
    script.write_text(page_script(page))
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    return subprocess.run(
        [sys.executable, script.name], cwd=folder, env=env, capture_output=True, text=True, timeout=900
    )


def _build_site(site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Every page's script and the site build, started together two at a time (each on one thread: the two
    cores of a CI machine), so the tests below mostly wait for results already computed."""
    pool = ThreadPoolExecutor(max_workers=2)
    started = {"site": pool.submit(_build_site, tmp_path_factory.mktemp("site") / "site")}
    for page in RUN_PAGES:
        started[page] = pool.submit(_run_page, page, tmp_path_factory.mktemp(Path(page).stem))
    yield started
    pool.shutdown(cancel_futures=True)


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES)
def test_page_code_runs(page, jobs):
    done = jobs[page].result()
    assert done.returncode == 0, f"{page} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"


@pytest.mark.slow
def test_site_builds_strict(jobs):
    done = jobs["site"].result()
    assert done.returncode == 0, done.stderr[-6000:]
    site = Path(done.args[done.args.index("--site-dir") + 1])
    cli = (site / "cli" / "index.html").read_text()
    assert "proactiv sweep" in cli and "--resume" in cli  # generated from the Typer app at build time
    api = (site / "reference" / "api" / "index.html").read_text()
    assert (
        "open_run" in api and "ProjectionSpec" in (site / "reference" / "config" / "index.html").read_text()
    )
