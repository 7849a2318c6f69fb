"""A local stand-in for the Hugging Face Hub's HTTP API, enough for ``huggingface_hub``'s ``model_info`` and
``snapshot_download``: one repository served from a folder, one branch, and the Hub's error headers for anything else.

The real ``huggingface_hub`` client talks to it (``endpoint=<url>``), so the script's Hub code runs the real protocol
without a network.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeHub:
    """The served repository and every request the client made (method, path)."""

    repo_id: str
    folder: Path
    url: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)

    def files(self) -> list[Path]:
        return sorted(path for path in self.folder.rglob("*") if path.is_file())

    def downloaded(self) -> set[str]:
        """Names of the files whose content the client fetched."""
        marker = f"/{self.repo_id}/resolve/{COMMIT}/"
        return {path.split(marker, 1)[1] for method, path in self.requests if method == "GET" and marker in path}


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet test output
            pass

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def _send(self, status: int, body: bytes, headers: dict[str, str], send_body: bool) -> None:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _error(self, code: str, send_body: bool) -> None:
            body = json.dumps({"error": code}).encode()
            self._send(404, body, {"X-Error-Code": code, "Content-Type": "application/json"}, send_body)

        def _serve(self, send_body: bool) -> None:
            hub.requests.append((self.command, self.path))
            path = urllib.parse.unquote(urllib.parse.urlparse(self.path).path)
            api = f"/api/models/{hub.repo_id}"
            files = [(file.relative_to(hub.folder).as_posix(), file) for file in hub.files()]
            if path.startswith(f"{api}/revision/"):
                if path.removeprefix(f"{api}/revision/") not in ("main", COMMIT):
                    return self._error("RevisionNotFound", send_body)
                siblings = [{"rfilename": name, "size": file.stat().st_size} for name, file in files]
                body = json.dumps({"id": hub.repo_id, "sha": COMMIT, "siblings": siblings}).encode()
                return self._send(200, body, {"Content-Type": "application/json"}, send_body)
            if path.startswith(f"{api}/tree/"):
                tree = [
                    {
                        "type": "file",
                        "path": name,
                        "size": file.stat().st_size,
                        "oid": hashlib.sha1(file.read_bytes()).hexdigest(),
                    }
                    for name, file in files
                ]
                return self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, send_body)
            resolve = f"/{hub.repo_id}/resolve/{COMMIT}/"
            served = dict(files)
            if path.startswith(resolve) and path.removeprefix(resolve) in served:
                data = served[path.removeprefix(resolve)].read_bytes()
                etag = f'"{hashlib.sha256(data).hexdigest()}"'
                return self._send(200, data, {"X-Repo-Commit": COMMIT, "ETag": etag}, send_body)
            return self._error("RepoNotFound", send_body)

    return Handler


@contextmanager
def serve(repo_id: str, folder: Path) -> Iterator[FakeHub]:
    """Serve ``folder`` as the Hub repository ``repo_id`` on a free local port while the block runs."""
    hub = FakeHub(repo_id=repo_id, folder=folder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
