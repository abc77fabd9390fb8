"""FaultProxy: an HTTP reverse proxy on loopback that fails chosen requests.

Object-store clients speak plain HTTP to the emulators in tests. Putting
this proxy between the server and an emulator lets a test break exactly the
requests it wants (say, GETs of one version's objects) with a real 503 over
a real socket, and heal them again, while everything else passes through
untouched. The test points the server at proxy.url instead of the emulator.
"""

import http.client
import http.server
import re
import threading
from typing import Optional

# Hop-by-hop headers are the proxy's own business (RFC 9110, 7.6.1).
_HOP_BY_HOP = frozenset([
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade"
])


class FaultProxy:
  """Forwards to http://127.0.0.1:<upstream_port>; see the module docstring."""

  def __init__(self, upstream_port: int) -> None:
    self._upstream_port = upstream_port
    self._mu = threading.Lock()
    self._fail: Optional[re.Pattern] = None  # guarded by self._mu
    self.failed: list[str] = []  # guarded by self._mu
    proxy = self

    class Handler(http.server.BaseHTTPRequestHandler):
      protocol_version = "HTTP/1.1"

      def log_message(self, *args):  # pylint: disable=arguments-differ
        del args

      def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if proxy.should_fail(self.command, self.path):
          payload = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>"
                     b"ServiceUnavailable</Code><Message>injected by the "
                     b"test</Message></Error>")
          self.send_response(503)
          self.send_header("Content-Type", "application/xml")
          self.send_header("Content-Length", str(len(payload)))
          self.end_headers()
          if self.command != "HEAD":
            self.wfile.write(payload)
          return
        upstream = http.client.HTTPConnection("127.0.0.1",
                                              proxy._upstream_port, timeout=60)
        try:
          headers = {k: v for k, v in self.headers.items()
                     if k.lower() not in _HOP_BY_HOP}
          upstream.request(self.command, self.path, body=body,
                           headers=headers)
          response = upstream.getresponse()
          data = response.read()
          self.send_response(response.status, response.reason)
          for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP and (
                key.lower() != "content-length"):
              self.send_header(key, value)
          length = response.getheader("Content-Length")
          if self.command == "HEAD" and length is not None:
            self.send_header("Content-Length", length)
          else:
            self.send_header("Content-Length", str(len(data)))
          self.end_headers()
          if self.command != "HEAD":
            self.wfile.write(data)
        finally:
          upstream.close()

      do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self._server.daemon_threads = True
    self._thread = threading.Thread(target=self._server.serve_forever,
                                    name="FaultProxy", daemon=True)
    self._thread.start()

  @property
  def url(self) -> str:
    return f"http://127.0.0.1:{self._server.server_address[1]}"

  def fail(self, pattern: Optional[str]) -> None:
    """Fails "<METHOD> <path>" lines matching `pattern` (None: heal)."""
    with self._mu:
      self._fail = re.compile(pattern) if pattern else None

  def should_fail(self, method: str, path: str) -> bool:
    with self._mu:
      if self._fail is not None and self._fail.search(f"{method} {path}"):
        self.failed.append(f"{method} {path}")
        return True
      return False

  def close(self) -> None:
    self._server.shutdown()
    self._server.server_close()
    self._thread.join(10)
