"""A callback receiver as integrators run one: a real HTTP server decrypting pushes with the ``dingtalk-sdk`` package's
``DingTalkCrypto`` and answering the encrypted ``success`` it builds, with switches for the failures tests need."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dingtalk.crypto import DingTalkCrypto

AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
TOKEN = "zida-callback-token"


class Receiver:
    """Receives DingTalk pushes for one ownerKey (corpId or appKey); ``mode`` says how it answers:
    ``ok``, ``down`` (HTTP 503), ``redirect`` (302 elsewhere), ``plain`` (``success`` unencrypted), ``slow`` (past
    the 1.5 s deadline)."""

    def __init__(self, owner: str, token: str = TOKEN, aes_key: str = AES_KEY) -> None:
        self.crypto = DingTalkCrypto(token, aes_key, owner)
        self.token, self.aes_key, self.owner = token, aes_key, owner
        self.mode = "ok"
        self.messages: list[dict[str, Any]] = []  # decrypted pushes it acknowledged, in arrival order
        self.refused = 0  # pushes answered with a failure
        self.queries: list[dict[str, list[str]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                query = parse_qs(urlsplit(self.path).query)
                mode = receiver.mode
                if mode == "down":
                    with receiver.lock:
                        receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    self.end_headers()
                    return
                text = receiver.crypto.decrypt_encrypt_str(
                    query["msg_signature"][0], query["timestamp"][0], query["nonce"][0], body["encrypt"]
                )
                if mode == "slow":
                    time.sleep(2.5)
                if mode == "cut":  # announces 100 bytes, sends 5 and closes
                    with receiver.lock:
                        receiver.refused += 1
                    self.send_response(200)
                    self.send_header("content-length", "100")
                    self.end_headers()
                    self.wfile.write(b"short")
                    self.close_connection = True
                    return
                reply: Any = "success" if mode == "plain" else receiver.crypto.encrypt_message("success")
                if mode == "non_ascii_signature":
                    reply = {"msg_signature": "é", "timeStamp": "1", "nonce": "n", "encrypt": "x"}
                with receiver.lock:
                    receiver.queries.append(query)
                    if mode in ("ok", "slow"):
                        receiver.messages.append(json.loads(text))
                    else:
                        receiver.refused += 1
                data = json.dumps(reply).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # Zida gave up waiting (slow)
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Received events but the check_url handshakes (of one type)."""
        with self.lock:
            found = [m for m in self.messages if m.get("EventType") != "check_url"]
        return [m for m in found if event_type is None or m.get("EventType") == event_type]

    def wait_for(self, count: int, event_type: str | None = None, timeout: float = 15) -> list[dict[str, Any]]:
        """At least ``count`` received events (of one type), waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(event_type)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} events, got {self.events(event_type)}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
