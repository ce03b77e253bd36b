"""A tiny websocket client (RFC 6455, stdlib only): enough to read ComfyUI's /ws event stream.

    ws = WebSocket.connect("http://127.0.0.1:8188/ws?clientId=abc", timeout=10)
    while (message := ws.receive()) is not None:   # text frames as str, binary frames as bytes; None when closed
        ...

Only what ComfyUI's server needs: one unfragmented or fragmented message at a time, pings answered, no extensions.
"""
import base64
import os
import socket
import struct
import urllib.parse

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketError(OSError):
    """The handshake failed or the stream broke."""


class WebSocket:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    @classmethod
    def connect(cls, url: str, timeout: float = 10.0) -> "WebSocket":
        """Open a websocket to an http(s)/ws URL (plain TCP only: http and ws)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "ws"):
            raise WebSocketError(f"only http/ws URLs are supported, not {parts.scheme!r}")
        host, port = parts.hostname, parts.port or 80
        sock = socket.create_connection((host, port), timeout=timeout)
        ws = cls(sock)
        ws._handshake(f"{host}:{port}", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        return ws

    def _handshake(self, host: str, path: str) -> None:
        """Send the HTTP upgrade request and check the 101 answer."""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if " 101 " not in status + " ":
            raise WebSocketError(f"websocket handshake refused: {status}")

    def _fill(self) -> None:
        """Read more bytes into the buffer (raises on a closed stream)."""
        data = self.sock.recv(65536)
        if not data:
            raise WebSocketError("connection closed")
        self.buffer += data

    def _take(self, n: int) -> bytes:
        """The next n bytes of the stream."""
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _frame(self) -> tuple[bool, int, bytes]:
        """One frame: (final, opcode, payload)."""
        b0, b1 = self._take(2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._take(8))[0]
        mask = self._take(4) if b1 & 0x80 else None
        payload = self._take(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def send(self, opcode: int, payload: bytes = b"") -> None:
        """Send one masked frame (clients must mask)."""
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                         bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                         bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self):
        """The next message (str for text, bytes for binary), or None once the server closed the stream."""
        parts, kind = [], None
        while True:
            final, opcode, payload = self._frame()
            if opcode == OP_PING:
                self.send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                return None
            kind = kind if opcode == OP_CONT else opcode
            parts.append(payload)
            if final:
                data = b"".join(parts)
                return data.decode("utf-8", "replace") if kind == OP_TEXT else data

    def close(self) -> None:
        """Close the stream (best effort)."""
        try:
            self.send(OP_CLOSE)
        except OSError:
            pass
        self.sock.close()
