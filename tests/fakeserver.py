"""A fake OpenAI-compatible chat server on 127.0.0.1 that replays scripted replies.

Tests queue ``Reply`` objects; each POST to ``/v1/chat/completions`` takes the
next one and replies as a real server would: a JSON body, or a stream of
server-sent events when the request asks for ``stream: true``. Faults are
replies too: an HTTP status, a delay, a truncated or malformed stream, a
dropped connection.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted reply of the fake server."""

    content: str = ""
    status: int = 200
    error: str | None = None
    """Error message sent in an OpenAI-style error body when ``status`` is not 200."""
    delay: float = 0.0
    """Seconds to wait before replying (for timeout tests)."""
    finish_reason: str | None = "stop"
    truncate: bool = False
    """Stream: stop after half the content, without finish_reason or [DONE]."""
    malformed: bool = False
    """Stream: send a chunk that is not JSON. Whole reply: send a body that is not JSON."""
    drop: bool = False
    """Close the connection without any response."""
    headers: dict[str, str] = field(default_factory=dict)
    chunk_chars: int = 7
    chunk_delay: float = 0.0
    """Seconds to wait before each stream chunk, or before each 16 bytes of a whole reply."""


class FakeLlmServer:
    """Start with ``start()``; ``url`` is the OpenAI-style base URL ending in ``/v1``."""

    def __init__(self, model: str = "qwen2.5-coder:7b") -> None:
        self.model = model
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A client that gave up (timeout tests) makes the handler's writes fail; that is expected.
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeLlmServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def push(self, *replies: Reply | str) -> None:
        """Queue replies; a plain string is a successful reply with that content."""
        for reply in replies:
            self.replies.append(Reply(content=reply) if isinstance(reply, str) else reply)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send_json(200, {"object": "list", "data": [{"id": server.model}]})
                else:
                    self._send_json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": "404 page not found"}})
                    return
                if body.get("model") != server.model:
                    message = f'model "{body.get("model")}" not found, try pulling it first'
                    self._send_json(404, {"error": {"message": message, "type": "api_error"}})
                    return
                reply = (
                    server.replies.popleft()
                    if server.replies
                    else Reply(status=500, error="the fake server has no scripted reply left")
                )
                self._reply_delay = reply.chunk_delay
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if reply.status != 200:
                    self._send_json(
                        reply.status, {"error": {"message": reply.error or "error"}}, reply.headers
                    )
                elif body.get("stream"):
                    self._stream(reply)
                else:
                    self._whole(reply)

            _reply_delay = 0.0

            def _send_json(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not self._reply_delay:
                    self.wfile.write(data)
                    return
                for start in range(0, len(data), 16):
                    time.sleep(self._reply_delay)
                    self.wfile.write(data[start : start + 16])
                    self.wfile.flush()

            def _whole(self, reply: Reply) -> None:
                if reply.malformed:
                    data = b"<html>this is not json</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self._send_json(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "model": server.model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": reply.finish_reason,
                            }
                        ],
                    },
                )

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

                content = reply.content
                if reply.truncate:
                    content = content[: len(content) // 2]
                step = max(1, reply.chunk_chars)
                for start in range(0, len(content), step):
                    self._event(
                        {
                            "choices": [
                                {
                                    "index": 0,
                                    "delta": {"content": content[start : start + step]},
                                    "finish_reason": None,
                                }
                            ]
                        }
                    )

                if reply.malformed:
                    self.wfile.write(b"data: {not json\n\n")
                    self.wfile.flush()
                    return
                if reply.truncate:
                    self.wfile.flush()
                    return

                self._event(
                    {"choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]}
                )
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, payload: Any) -> None:
                if self._reply_delay:
                    time.sleep(self._reply_delay)
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

        return Handler
