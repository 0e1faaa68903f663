"""A local HTTP server for data sources: files of a folder, with an ETag like a real host."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path


class DataServer:
    """Serves `folder` on 127.0.0.1 (GET and HEAD, ETag = hash of the bytes) until stopped.

    `refuse_head`: answer HEAD with 405, as some hosts do. `requests` counts the requests seen.
    """

    def __init__(self, folder: Path, *, refuse_head: bool = False) -> None:
        self.folder = folder
        self.refuse_head = refuse_head
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                server.requests.append(("HEAD", self.path))
                if server.refuse_head:
                    self.send_error(405)
                    return
                self._answer(body=False)

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path))
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                file = server.folder / self.path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()[:16]}"')
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep the test output quiet
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.running = True

    def stop(self) -> None:
        """Stop serving and free the port: a request now fails to connect (offline)."""
        if self.running:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self.running = False
