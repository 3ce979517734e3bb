"""A real HTTP server on 127.0.0.1 for the download tests: serves a folder, honours Range requests, and on
request misbehaves like a real mirror can (a response cut half-way, a server that stops answering, a slow
trickle, a 404). Every request is logged: path, Range header, status, bytes sent."""

from __future__ import annotations

import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        srv = self.server
        rel = unquote(urlparse(self.path).path).lstrip("/")
        fault = srv.faults.get(rel)
        entry = {"path": rel, "range": self.headers.get("Range"), "status": None, "sent": 0}
        srv.log.append(entry)
        if fault == "hang":  # accept the request, then say nothing until the test ends
            srv.release.wait()
            return
        path = srv.root / rel
        if fault == "404" or not path.is_file():
            entry["status"] = 404
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            if start >= len(data):
                entry["status"] = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            entry["status"] = 206
        else:
            self.send_response(200)
            entry["status"] = 200
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if fault == "cut":  # half of what was announced, then the connection drops (once)
            del srv.faults[rel]
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            entry["sent"] = len(body) // 2
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        step = 4096 if fault == "trickle" else len(body) or 1
        for i in range(0, len(body), step):
            try:
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            entry["sent"] += len(body[i:i + step])
            if fault == "trickle":
                time.sleep(0.02)


class FileServer(ThreadingHTTPServer):
    """``with FileServer(folder) as server: server.url("a.zip")``; ``server.faults[path] = "cut"`` etc."""

    daemon_threads = True

    def __init__(self, root: str | Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = Path(root)
        self.faults: dict[str, str] = {}
        self.log: list[dict] = []
        self.release = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, rel: str = "") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{rel}"

    def requests_for(self, rel: str) -> list[dict]:
        return [e for e in self.log if e["path"] == rel]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
