"""The figures and reports of ROOTASSETS_HOME over HTTP, for the Dagster UI to show them inline.

Dagster's UI renders a short markdown image link in an asset's metadata as the image itself, but a
browser will not load a local file from a web page. `rootassets ui` therefore serves `figures/` and
`reports/` (nothing else: not the database, the downloads or the Dagster instance) read-only beside
the UI, at ROOTASSETS_FILES_URL, the address the figure assets write into their metadata.
"""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVED = ("figures", "reports")


class ArtifactsHandler(SimpleHTTPRequestHandler):
    """GET and HEAD of files under the served folders; anything else is 404 (or 501 for other methods)."""

    def translate_path(self, path: str) -> str:
        translated = Path(super().translate_path(path)).resolve()
        root = Path(self.directory).resolve()
        if not any(translated.is_relative_to(root / folder) for folder in SERVED):
            return str(root / "not-served")  # does not exist: 404, whatever the request tried to reach
        return str(translated)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet: the UI's own log is the one to read."""


def start(home: Path, host: str, port: int) -> ThreadingHTTPServer:
    """Serve `home`'s figures and reports on `host:port` from a daemon thread; the caller shuts it down."""
    server = ThreadingHTTPServer((host, port), partial(ArtifactsHandler, directory=str(home)))
    threading.Thread(target=server.serve_forever, name="rootassets-artifacts", daemon=True).start()
    return server
