"""A local OpenAI-compatible chat completions endpoint for tests: http.server on 127.0.0.1.

    with OpenAIStub(["500", "answer"]) as stub:
      ...  # OPENAI_BASE_URL=stub.base_url; the first request gets HTTP 500, the second "answer"
    stub.requests  # the JSON bodies received, in order

Each request takes the next entry of `script` (the last one repeats): "500" (or any
three-digit status) answers that HTTP error, "sleep:S" waits S seconds before answering
STUB_ANSWER, any other text is the assistant's answer.
"""

import http.server
import json
import threading
import time

STUB_ANSWER = "## resnet18\nThe maps sit on the cat's head.\n"
CHAT_PATH = "/v1/chat/completions"


class OpenAIStub:
  """The server, serving from a thread while the `with` block runs."""

  def __init__(self, script: list[str]):
    self.script = list(script)
    self.requests: list[dict] = []
    self.authorizations: list[str | None] = []
    stub = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stub.requests.append(body)
        stub.authorizations.append(self.headers.get("Authorization"))
        step = stub.script[min(len(stub.requests), len(stub.script)) - 1]
        if self.path != CHAT_PATH:
          self._send(404, {"error": {"message": f"no {self.path}"}})
        elif step.isdigit() and len(step) == 3:
          self._send(int(step), {"error": {"message": f"stub status {step}"}})
        else:
          if step.startswith("sleep:"):
            time.sleep(float(step.removeprefix("sleep:")))
            step = STUB_ANSWER
          self._send(200, {
              "id": f"chatcmpl-{len(stub.requests)}", "object": "chat.completion", "created": 0,
              "model": body.get("model"),
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": step}}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

      def _send(self, status, payload):
        data = json.dumps(payload).encode()
        try:
          self.send_response(status)
          self.send_header("Content-Type", "application/json")
          self.send_header("Content-Length", str(len(data)))
          self.end_headers()
          self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
          pass

      def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        del format, args

    self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.server.daemon_threads = True
    self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
    self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

  def __enter__(self) -> "OpenAIStub":
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self.server.shutdown()
    self.server.server_close()
    self._thread.join()
