"""Start the dashboard: open the runs (computing missing analyses with progress), bind, print the URL.

Binds 127.0.0.1 unless another host is asked for, and then warns: the dashboard has no authentication.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

LOCAL = "127.0.0.1"


def host_warning(host: str) -> str | None:
    """A warning for any bind address other than loopback, else None."""
    if host in (LOCAL, "localhost", "::1"):
        return None
    return (
        f"the dashboard will listen on {host}: anyone who can reach this machine on that address can see "
        "the runs (there is no authentication)"
    )


def _is_dir(r) -> bool:
    return isinstance(r, Path) or (isinstance(r, str) and Path(r).is_dir())


def url(host: str, port: int) -> str:
    shown = LOCAL if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}/"


def serve(
    runs: list,
    host: str = LOCAL,
    port: int = 8050,
    say: Callable[[str], None] = print,
    progress: Callable[[str, float], None] | None = None,
) -> None:
    """Serve ``runs`` (opened :class:`RunData`, or directories opened here, computing missing analyses: a run,
    or a folder of runs). A directory that is neither is refused (:class:`~proactiv.store.RunError`) before any
    run is opened."""
    from proactiv.dashboard.app import build_app
    from proactiv.dashboard.data import RunData, open_runs
    from proactiv.store import run_dirs

    warning = host_warning(host)
    if warning:
        say(f"warning: {warning}")
    found = [[r] if isinstance(r, RunData | str) and not _is_dir(r) else run_dirs(r) for r in runs]
    opened = [r if isinstance(r, RunData | str) and not _is_dir(r) else open_runs([r], True, progress)[0]
              for part in found for r in part]  # fmt: skip
    for r in opened:
        if isinstance(r, str):
            say(f"warning: {r}")
    app = build_app(opened)
    say(f"proactiv dashboard: {url(host, port)}  (Ctrl+C to stop)")
    app.run(host=host, port=int(port), debug=False)
