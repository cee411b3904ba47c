"""`rootassets ui` serves the home's figures and reports (nothing else) for the UI to show them inline."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from rootassets import artifacts_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_figures_and_reports_are_served_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "figures" / "RELEASE-2021").mkdir(parents=True)
    (tmp_path / "figures" / "RELEASE-2021" / "figure_1.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "reports" / "RELEASE-2021").mkdir(parents=True)
    (tmp_path / "reports" / "RELEASE-2021" / "report.html").write_text("<h1>report</h1>")
    (tmp_path / "rootassets.duckdb").write_bytes(b"secret rows")
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("x: 1")
    (tmp_path / "figures-elsewhere").mkdir()
    (tmp_path / "figures-elsewhere" / "a.png").write_bytes(b"not served")
    port = free_port()
    server = artifacts_server.start(tmp_path, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        figure = httpx.get(f"{base}/figures/RELEASE-2021/figure_1.png")
        assert figure.status_code == 200 and figure.content == b"\x89PNG fake"
        assert figure.headers["content-type"] == "image/png"
        assert httpx.get(f"{base}/reports/RELEASE-2021/report.html").text == "<h1>report</h1>"
        for path in (
            "/rootassets.duckdb",
            "/dagster/dagster.yaml",
            "/figures/../rootassets.duckdb",
            "/figures/%2e%2e/rootassets.duckdb",
            "/figures-elsewhere/a.png",
            "/",
        ):
            answer = httpx.get(base + path)
            assert answer.status_code == 404 and b"secret" not in answer.content, path
        assert httpx.post(f"{base}/figures/RELEASE-2021/figure_1.png").status_code == 501  # read-only
    finally:
        server.shutdown()
        server.server_close()
