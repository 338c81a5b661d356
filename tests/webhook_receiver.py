"""A webhook receiver for the alert tests: a real HTTP server on a free local port."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The path of a webhook URL is often its secret: the tests check it never leaks.
SECRET_PATH = "/hooks/T000/secret-token"


class Receiver:
    """A webhook receiver on a free local port: keeps every JSON body POSTed to it, answers `status`."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.status = 200
        self.trickle = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.bodies.append(
                    {"path": self.path, "content_type": self.headers.get("Content-Type"), **json.loads(body)}
                )
                if receiver.trickle:  # an answer one byte at a time: each wait short, the whole endless
                    for byte in b"HTTP/1.1 200 OK\r\n" * 100:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.2)
                    return
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A client that gives up on a trickled answer resets the connection: expected, not worth a traceback.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def events(self) -> list[str]:
        return [body["event"] for body in self.bodies]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
