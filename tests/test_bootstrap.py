"""scripts/bootstrap.sh: a disk too full for the Python packages is named before pip starts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path, free_mb: int) -> tuple[Path, dict]:
    """A copy of the bootstrap script in an empty project, with `df` and `dpkg-query` faked on PATH."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", project / "scripts" / "bootstrap.sh")
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "df").write_text(
        "#!/bin/sh\necho 'Filesystem 1M-blocks Used Available Capacity Mounted'\n"
        f"echo '/dev/fake 100000 90000 {free_mb} 99% /'\n"
    )
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nprintf 'install ok installed'\n")
    for tool in ("df", "dpkg-query"):
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    return project, env


def test_too_little_space_is_refused_before_installing(tmp_path):
    project, env = _project(tmp_path, free_mb=300)
    done = subprocess.run(
        ["bash", "scripts/bootstrap.sh", "demo"], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert f"only 300 MB free on the disk of {project}" in done.stderr
    assert "need about 4096 MB" in done.stderr
    assert not (project / ".venv").exists()  # stopped before creating the environment


def test_installed_environment_needs_no_free_space(tmp_path):
    project, env = _project(tmp_path, free_mb=300)
    (project / ".venv").mkdir()
    marker = project / ".venv" / ".installed-demo"
    marker.touch()
    os.utime(project / "pyproject.toml", (1, 1))  # older than the marker: nothing to install
    done = subprocess.run(
        ["bash", "scripts/bootstrap.sh", "demo"], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "MB free" not in done.stderr
