"""A Slack-style incoming webhook on 127.0.0.1 for tests: records every POSTed JSON body.

``fail_first=N`` answers the first N requests with HTTP 500 (then 200), to test retries;
``delay`` seconds of thinking before each answer make overlapping senders overlap.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookServer:
    """Start with ``with WebhookServer() as hook:``; ``hook.url``, ``hook.received``."""

    def __init__(
        self,
        fail_first: int = 0,
        path: str = "/services/T000/B000/secret-token",
        delay: float = 0.0,
    ):
        self.fail_first = fail_first
        self.delay = delay
        self.path = path
        self.received: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def texts(self) -> list[str]:
        with self._lock:
            return [body["text"] for body in self.received]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                time.sleep(hook.delay)
                with hook._lock:
                    failing = hook.fail_first > 0
                    if failing:
                        hook.fail_first -= 1
                        hook.failed.append(body)
                    else:
                        hook.received.append(body)
                self.send_response(500 if failing else 200)
                self.end_headers()
                self.wfile.write(b"error" if failing else b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
