"""Serving: loopback by default, a warning for any other address, and the URL to open."""

from proactiv.dashboard.serve import host_warning, url


def test_serve_binds_locally_and_warns_otherwise():
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert "no authentication" in host_warning("0.0.0.0")
    assert url("0.0.0.0", 8050) == "http://127.0.0.1:8050/" and url("::1", 9) == "http://::1:9/"
