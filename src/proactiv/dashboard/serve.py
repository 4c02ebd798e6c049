"""Start the dashboard: open the runs (computing missing analyses with progress), bind, print the URL.

The app runs on waitress, a production WSGI server (pure Python, on every platform): a fixed pool of threads
answers the callbacks, connections beyond its limit wait in the listen queue instead of each taking a thread,
and there is no development-server warning. It binds 127.0.0.1 unless told otherwise; any address other than a
loopback one needs ``public=True`` (``proactiv serve --public``), and then the dashboard prints the addresses at
which others can reach it, and that it has no authentication.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from proactiv.extras import require

LOCAL = "127.0.0.1"
LOOPBACK_NAMES = ("localhost",)
#: threads answering requests: a page load fires about a dozen callbacks at once, so none of them waits for a
#: thread; under 200 concurrent callbacks 4, 8, 16 and 32 threads answered at the same rate on 2 cores, the median
#: falling with more threads (benchmarks/bench_dashboard_load.py --threads 4 8 16 32)
THREADS = 16


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the dashboard on this machine (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may name any interface
        return False


def public_refusal(host: str) -> str:
    """Why ``host`` is refused without ``public``."""
    return (
        f"--host {host} would let other machines open the dashboard, which has no authentication; "
        "add --public to serve it beyond this machine anyway"
    )


def _interface_addresses() -> set[str]:
    """This machine's own addresses as far as the standard library tells (no packet is sent): one IPv4 address
    per network interface (Linux), the IPv6 addresses of /proc/net/if_inet6 (Linux), the addresses its host
    name resolves to, and those it would send from toward a public address."""
    found: set[str] = set()
    try:
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                try:  # SIOCGIFADDR: the interface's IPv4 address
                    packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
                    found.add(socket.inet_ntoa(packed[20:24]))
                except OSError:
                    pass  # an interface without an IPv4 address
    except (ImportError, OSError, AttributeError):
        pass  # not Linux
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    except (OSError, ValueError, IndexError):
        pass
    try:
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
    except OSError:
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:  # connecting a UDP socket picks the outgoing address without sending anything
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                found.add(s.getsockname()[0])
        except OSError:
            pass
    return {a.split("%")[0] for a in found}


def reachable_at(host: str) -> list[str]:
    """The addresses other machines may use to reach a server bound to ``host``: this machine's non-loopback
    addresses of the bound family for a wildcard (``0.0.0.0``: IPv4; ``::``: IPv6), else what ``host`` names."""
    if host in ("0.0.0.0", "", "::"):
        version = 6 if host == "::" else 4
        addresses = [ipaddress.ip_address(a) for a in _interface_addresses()]
        chosen = [a for a in addresses if a.version == version and not a.is_loopback]
    else:
        try:
            chosen = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                chosen = [ipaddress.ip_address(i[4][0].split("%")[0]) for i in socket.getaddrinfo(host, None)]
            except OSError:
                return [host]
    # routable addresses first: a link-local one (fe80::, 169.254.) only reaches the same network segment
    return [str(a) for a in sorted(set(chosen), key=lambda a: (a.is_link_local, a.version, int(a)))]


def host_warning(host: str, port: int = 8050) -> str | None:
    """None for a loopback address; else who can reach the dashboard (at which URLs), and that it has no
    authentication."""
    if is_loopback(host):
        return None
    where = ", ".join(url(a, port) for a in reachable_at(host)) or "(no address of this machine found)"
    return (
        f"the dashboard listens on {host}: anyone whose machine can reach this one can open it at {where} and "
        "see every run it serves; there is no authentication and no encryption (plain HTTP)"
    )


def _is_dir(r) -> bool:
    return isinstance(r, Path) or (isinstance(r, str) and Path(r).is_dir())


def url(host: str, port: int) -> str:
    shown = LOCAL if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:  # an IPv6 address goes in brackets
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


class Server:
    """A WSGI app served by waitress on ``host``:``port`` (0: a free port; ``port`` then says which). Bound on
    creation; :meth:`run` answers requests until Ctrl+C or :meth:`stop` (from another thread)."""

    def __init__(self, wsgi_app: Callable, host: str = LOCAL, port: int = 8050, threads: int = THREADS):
        server = require("waitress.server", "dashboard", "serving the dashboard")
        self._map: dict = {}
        # the queue-depth warning fires whenever more callbacks wait than threads are idle, which one page
        # load does; connections beyond the limit wait in the listen queue (backlog) and are answered later
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        try:
            self._server = server.create_server(
                wsgi_app, map=self._map, host=host, port=int(port), threads=int(threads), ident="proactiv"
            )
        except OSError as err:
            raise OSError(f"cannot listen on {url(host, port)}: {err.strerror or err}") from err
        listening = getattr(self._server, "effective_listen", None)  # several sockets (e.g. localhost)
        self.host = host
        self.port = int(listening[0][1] if listening else self._server.effective_port)

    def _bound(self) -> list:
        from waitress.server import BaseWSGIServer

        return [d for d in list(self._map.values()) if isinstance(d, BaseWSGIServer)]

    def run(self) -> None:
        try:
            self._server.run()  # returns on Ctrl+C too
        finally:
            self._server.task_dispatcher.shutdown()

    def stop(self) -> None:
        """Stop :meth:`run` (in another thread): every socket is closed by the serving loop itself, which then
        ends (its map is empty)."""
        from waitress import wasyncore

        bound = self._bound()
        if bound:
            bound[0].trigger.pull_trigger(lambda: wasyncore.close_all(self._map))


def serve(
    runs: list,
    host: str = LOCAL,
    port: int = 8050,
    say: Callable[[str], None] = print,
    progress: Callable[[str, float], None] | None = None,
    public: bool = False,
    threads: int = THREADS,
) -> None:
    """Serve ``runs`` (opened :class:`RunData`, or directories opened here, computing missing analyses: a run,
    or a folder of runs) on waitress. A directory that is neither is refused (:class:`~proactiv.store.RunError`)
    before any run is opened; a ``host`` other than a loopback address is refused (ValueError) unless ``public``."""
    from proactiv.dashboard.app import build_app
    from proactiv.dashboard.data import RunData, open_runs
    from proactiv.store import run_dirs

    if not public and not is_loopback(host):
        raise ValueError(public_refusal(host))
    found = [[r] if isinstance(r, RunData | str) and not _is_dir(r) else run_dirs(r) for r in runs]
    opened = [r if isinstance(r, RunData | str) and not _is_dir(r) else open_runs([r], True, progress)[0]
              for part in found for r in part]  # fmt: skip
    for r in opened:
        if isinstance(r, str):
            say(f"warning: {r}")
    server = Server(build_app(opened).server, host, port, threads)
    warning = host_warning(host, server.port)
    if warning:
        say(f"warning: {warning}")
    say(f"proactiv dashboard: {url(host, server.port)}  (waitress, {threads} threads; Ctrl+C to stop)")
    sys.stdout.flush()
    server.run()
