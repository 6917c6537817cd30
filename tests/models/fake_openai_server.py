"""A scripted OpenAI-compatible server on 127.0.0.1 for tests that need a server to misbehave:
echo the Authorization header back, lack a tokenize endpoint, refuse a response_format,
send invalid JSON. It records every request it was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], tuple[int, Any]]  # request body -> (status, text or JSON)


@dataclass
class FakeServer:
    api_key: str | None = None
    echo_auth_on_401: bool = True
    tokenize: bool = True  # serve llama-server's /tokenize
    # What /v1/chat/completions answers: a status and either a str (streamed as pieces) or a
    # JSON error body. Default: "Hello." (or a JSON final answer when output is constrained).
    reply: Reply | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.reply is not None:
            return self.reply(body)
        if "response_format" in body or "grammar" in body:
            return 200, json.dumps({"action": "final_answer", "answer": "Hello."})
        return 200, "Hello."


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if server.api_key is None:
                return True
            header = self.headers.get("Authorization", "")
            if header == f"Bearer {server.api_key}":
                return True
            message = "Invalid API key"
            if server.echo_auth_on_401:  # as some proxies do: the header and the bare key
                message += f" in header 'Authorization: {header}' (key {header[7:]!r})"
            self._send(401, {"error": {"message": message, "type": "authentication_error"}})
            return False

        def do_GET(self) -> None:
            server.requests.append({"method": "GET", "path": self.path})
            if not self._authorised():
                return
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "fake-model"}]})
            else:
                self._send(404, {"error": {"message": "Not Found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            server.requests.append({"method": "POST", "path": self.path, "body": body})
            if not self._authorised():
                return
            if self.path == "/tokenize" and server.tokenize:
                self._send(200, {"tokens": list(range(len(body.get("content", "").split())))})
            elif self.path == "/v1/chat/completions":
                status, payload = server.answer(body)
                if status != 200:
                    self._send(status, payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = payload if isinstance(payload, list) else _pieces(str(payload))
                for piece in pieces:
                    if piece.startswith("data:"):  # a raw line, sent as it is
                        self.wfile.write(piece.encode() + b"\n\n")
                        continue
                    chunk = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                done = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
            else:
                self._send(404, {"detail": "Not Found"})

    return Handler


def _pieces(text: str) -> list[str]:
    return [text[i : i + 4] for i in range(0, len(text), 4)] or [""]


@contextmanager
def fake_server(server: FakeServer | None = None) -> Iterator[FakeServer]:
    server = server or FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
