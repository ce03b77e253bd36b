"""One ComfyUI server in a sweep: its HTTP client, the prompts it has in flight, and a thread that turns its
websocket events into (server, kind, data) tuples on the sweep's event queue."""
import contextlib
import json
import queue
import signal
import threading
import time
from dataclasses import dataclass, field

from .comfy_server import ComfyServer
from .websocket import WebSocket, WebSocketError

DONE_EVENTS = ("execution_success", "execution_error", "execution_interrupted")


@contextlib.contextmanager
def sigint_deferred():
    """Ctrl-C held back until the block has run (main thread only), then handled as it would have been."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield  # signals reach the main thread only; a handler set outside Python could not be put back
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, None)


@dataclass
class Job:
    """One distinct prompt of the sweep (cells with the same prompt share it) and its tries."""
    key: str
    cells: list
    prompt: dict
    attempts: int = 0
    tried: list = field(default_factory=list)


@dataclass
class Running:
    """A job queued on a server: when it was sent, when it started, its sampler progress."""
    job: Job
    sent: float
    started: float | None = None
    value: int = 0
    maximum: int = 0
    seen_done: float | None = None  # when a history poll first found it done (its events may still be on the way)


class Remote:
    def __init__(self, url: str, events: queue.Queue):
        self.url = url.rstrip("/")
        self.client = ComfyServer(url=self.url)
        self.events = events
        self.inflight: dict[str, Running] = {}
        self.alive = True
        self.reason = ""
        self.done = 0
        self.ws: WebSocket | None = None

    def submit(self, job: "Job") -> str:
        """Queue a job's prompt and hold it in flight; a Ctrl-C waits for both, so cancel() knows each one queued."""
        with sigint_deferred():
            prompt_id = self.client.queue_prompt(job.prompt)
            self.inflight[prompt_id] = Running(job, time.time())
        return prompt_id

    def connect(self, timeout: float = 10.0) -> str:
        """Open the event stream and start reading it; '' or why there is none (then only polling sees results)."""
        ws_url = f"{self.url}/ws?clientId={self.client.client_id}"
        try:
            self.ws = WebSocket.connect(ws_url, timeout=timeout)
        except (OSError, WebSocketError) as error:
            return f"{self.url}: no websocket ({error}); results by polling, no step progress"
        self.ws.sock.settimeout(None)
        threading.Thread(target=self._read_events, name=f"events {self.url}", daemon=True).start()
        return ""

    def _read_events(self) -> None:
        """Forward every JSON event; a broken stream is reported once as 'lost'."""
        try:
            while (message := self.ws.receive()) is not None:
                if isinstance(message, str):
                    event = json.loads(message)
                    self.events.put((self, event.get("type"), event.get("data") or {}))
            reason = "the server closed its event stream"
        except (OSError, WebSocketError, ValueError) as error:
            reason = f"event stream broke: {error}"
        self.events.put((self, "lost", {"reason": reason}))

    def on_event(self, kind: str, data: dict) -> str | None:
        """Update progress from one event; returns the prompt id if that prompt has finished."""
        running = self.inflight.get(data.get("prompt_id"))
        if running is None:
            return None
        if kind in ("execution_start", "executing") and running.started is None:
            running.started = time.time()
        if kind == "progress":
            running.value, running.maximum = int(data.get("value", 0)), int(data.get("max", 0))
        if kind in DONE_EVENTS or (kind == "executing" and data.get("node") is None):
            return data["prompt_id"]
        return None

    def cancel(self, prompt_ids: list[str]) -> None:
        """Take prompts out of the server's queue and interrupt the one running (best effort)."""
        try:
            self.client._request("POST", "/queue", {"delete": prompt_ids}, timeout=5)
            if any(self.inflight[p].started for p in prompt_ids if p in self.inflight):
                self.client._request("POST", "/interrupt", {}, timeout=5)
        except OSError:
            pass

    def close(self) -> None:
        """Stop listening."""
        if self.ws is not None:
            self.ws.close()
