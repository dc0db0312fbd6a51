"""Helpers of the egress tests: a registry and a trap, both on 127.0.0.1 (tarballs for the registry: ``support.npm_tarball``)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading

from support import integrity


class Trap:
    """A listener on 127.0.0.1 that only counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class LocalRegistry:
    """An npm registry over plain HTTP on 127.0.0.1: packuments and tarballs of the packages added.

    ``requests`` records each request's path and Host header."""

    def __init__(self) -> None:
        self.tarballs: dict[str, bytes] = {}  # path -> tarball
        self.packuments: dict[str, dict[str, object]] = {}
        self.requests: list[tuple[str, str]] = []
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                registry.requests.append((self.path, self.headers.get("Host", "")))
                path = self.path.split("?", 1)[0]
                if path in registry.tarballs:
                    self._send(200, registry.tarballs[path], "application/octet-stream")
                elif path.lstrip("/") in registry.packuments:
                    self._send(200, json.dumps(registry.packuments[path.lstrip("/")]).encode(), "application/json")
                else:
                    self._send(404, b'{"error":"not found"}', "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def publish(self, name: str, version: str, tarball: bytes) -> str:
        """Serve ``name@version``; returns its tarball URL on this registry."""
        path = f"/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
        self.tarballs[path] = tarball
        url = f"{self.url.rstrip('/')}{path}"
        doc = self.packuments.setdefault(name, {"name": name, "dist-tags": {}, "versions": {}})
        doc["versions"][version] = {  # type: ignore[index]
            "name": name, "version": version,
            "dist": {"tarball": url, "integrity": integrity(tarball), "shasum": hashlib.sha1(tarball).hexdigest()},
        }
        doc["dist-tags"]["latest"] = version  # type: ignore[index]
        return url

    def tarball_requests(self) -> list[str]:
        return [p for p, _ in self.requests if p.endswith(".tgz")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
