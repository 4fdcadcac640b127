"""A loopback HTTP server that speaks OpenAI chat-completions, for the remote-endpoint path.

Each POST to /v1/chat/completions is answered by `script(request_json) -> Reply`; the default
replies echo. Replies can delay (for timeouts), fail with a status (429, 500...), send text
that is not JSON, carry logprobs, or refuse.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str = "ok"
    status: int = 200
    delay_s: float = 0.0
    raw: bytes | None = None
    """Sent as the body instead of a chat-completions JSON (a malformed response)."""
    logprobs: dict[str, float] | None = None
    """Top log-probabilities of the first token."""
    refusal: str | None = None
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 10, "completion_tokens": 5}
    )


def completion_body(reply: Reply, model: str, n: int) -> dict[str, Any]:
    logprobs = None
    if reply.logprobs is not None:
        top = [{"token": t, "logprob": lp, "bytes": None} for t, lp in reply.logprobs.items()]
        best = max(top, key=lambda t: t["logprob"])
        logprobs = {"content": [{**best, "top_logprobs": top}], "refusal": None}
    choice = {
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": reply.content, "refusal": reply.refusal},
        "logprobs": logprobs,
    }
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{**choice, "index": i} for i in range(n)],
        "usage": {**reply.usage, "total_tokens": sum(reply.usage.values())},
    }


@contextmanager
def openai_stub(script: Callable[[dict[str, Any]], Reply]) -> Iterator[dict[str, Any]]:
    """Serve on 127.0.0.1; yields {"base_url": ..., "requests": [received JSON bodies]}."""
    state: dict[str, Any] = {"requests": []}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state["requests"].append(body)
            reply = script(body)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.raw is not None:
                payload = reply.raw
            elif reply.status != 200:
                payload = json.dumps({"error": {"message": "stub error", "type": "x"}}).encode()
            else:
                payload = json.dumps(
                    completion_body(reply, body["model"], body.get("n", 1))
                ).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["base_url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
