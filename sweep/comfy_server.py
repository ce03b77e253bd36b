"""A real, headless ComfyUI server for the sweep runner, the demo and the tests, talked to over its HTTP API.

    with ComfyServer(models_dir=standins.models_dir()) as server:
        info = server.object_info()
        result = server.run(api_prompt, timeout=120)   # POST /prompt, poll GET /history/{id}
        assert result.ok, result.error_message
        png_bytes = server.view(result.images()[0])

Starting: `main.py [--cpu] --listen 127.0.0.1 --port <free port> --base-directory <temp dir>`, run from the ComfyUI
tree (`find_comfyui()`). The temp base directory holds `custom_nodes/guidance_zoo` (a symlink to this
repo), `models` (a symlink to the given models folder, e.g. the stand-ins) and the server's own input/output/temp/
user folders, so nothing is written into the ComfyUI tree or the repo. The server only listens on the loopback
address. `stop()` (also on leaving the `with` block, and at interpreter exit) terminates the server's process group
and removes the temp folder.

`ComfyServer(url="http://host:port")` attaches to a server that is already running instead (no start/stop);
the demo uses that for COMFYUI_URL.

ComfyUI caches results of identical prompts (a second identical POST executes nothing): vary a seed.
"""
import atexit
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "guidance_zoo"


class ServerError(RuntimeError):
    """The server did not start, answered something unexpected, or a prompt timed out."""


class PromptRejected(ServerError):
    """POST /prompt answered an HTTP error (validation failed); `status` and `body` (parsed JSON) say why."""

    def __init__(self, status: int, body):
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {self.summary()}")

    def summary(self) -> str:
        """One line: the error message and each node error ('node 10 GuidanceZooAPG: momentum: ...')."""
        if not isinstance(self.body, dict):
            return str(self.body)[:2000]
        parts = [str((self.body.get("error") or {}).get("message", ""))]
        for node_id, entry in self.node_errors.items():
            for err in entry.get("errors", []):
                parts.append(f"node {node_id} {entry.get('class_type')}: {err.get('details') or err.get('message')}")
        return "; ".join(p for p in parts if p)

    @property
    def node_errors(self) -> dict:
        return self.body.get("node_errors", {}) if isinstance(self.body, dict) else {}


@dataclass
class PromptResult:
    prompt_id: str
    status: dict
    outputs: dict
    messages: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status.get("status_str") == "success" and self.status.get("completed", False)

    @property
    def error(self) -> dict | None:
        """The execution_error message's data (node_id, node_type, exception_message, traceback...) if any."""
        for name, data in self.messages:
            if name in ("execution_error", "execution_interrupted"):
                return data
        return None

    @property
    def error_message(self) -> str:
        err = self.error
        if err is None:
            return "" if self.ok else f"not successful: {self.status}"
        return f"{err.get('node_type')} (node {err.get('node_id')}): {err.get('exception_type')}: " \
               f"{err.get('exception_message')}"

    def images(self) -> list[dict]:
        """Every image record ({filename, subfolder, type}) in the outputs, in node id order."""
        found = []
        for node_id in sorted(self.outputs, key=lambda k: (len(k), k)):
            found.extend(self.outputs[node_id].get("images", []))
        return found


def _die_with_parent():
    """In the child, before exec: on Linux, get SIGTERM when the process that started the server dies, so a
    killed test run (where atexit and finally do not run) leaves no server behind."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _remove_stale_bases():
    """Remove temp base folders left by killed runs (their owner pid, in the name, is gone)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "gz-comfy-*-*")):
        try:
            pid = int(os.path.basename(path).split("-")[2])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


def find_comfyui() -> str:
    """The ComfyUI tree: COMFYUI_PATH, else the one this pack is installed in (<ComfyUI>/custom_nodes/<pack>), else
    the tree beside the running venv (.runtime/<version>/ComfyUI, scripts/setup_runtime.sh)."""
    above = os.path.dirname(os.path.dirname(REPO))
    candidates = [os.environ.get("COMFYUI_PATH"),
                  above if os.path.basename(os.path.dirname(REPO)) == "custom_nodes" else None,
                  os.path.join(os.path.dirname(sys.prefix), "ComfyUI")]
    for path in filter(None, candidates):
        if os.path.isfile(os.path.join(path, "comfy", "samplers.py")):
            return path
    raise ServerError(f"no ComfyUI found (tried {', '.join(filter(None, candidates))}): set COMFYUI_PATH")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, models_dir: str | None = None, url: str | None = None, python: str | None = None,
                 comfyui: str | None = None, extra_args: tuple = (), start_timeout: float = 120.0, cpu: bool = True):
        self.models_dir = models_dir
        self.python = python or sys.executable
        self.comfyui = comfyui
        self.extra_args = list(extra_args)
        self.cpu = cpu
        self.start_timeout = start_timeout
        self.url = url.rstrip("/") if url else None
        self.external = url is not None
        self.proc: subprocess.Popen | None = None
        self.base: str | None = None
        self.log_path: str | None = None
        self.startup_seconds: float | None = None
        self.client_id = uuid.uuid4().hex

    # ---------------------------------------------------------------------------------------------- lifecycle
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        """Launch the server and wait until it answers."""
        return self.launch().wait_ready()

    def launch(self):
        """Start the server process without waiting for it (launch several, then wait_ready each: the process
        gets SIGTERM when the thread that launched it ends, so launch from a thread that outlives it)."""
        if self.external or self.proc is not None:
            return self
        comfyui = self.comfyui or find_comfyui()
        _remove_stale_bases()
        self.base = tempfile.mkdtemp(prefix=f"gz-comfy-{os.getpid()}-")
        os.makedirs(os.path.join(self.base, "custom_nodes"))
        os.symlink(REPO, os.path.join(self.base, "custom_nodes", PACKAGE))
        if self.models_dir:
            os.symlink(os.path.abspath(self.models_dir), os.path.join(self.base, "models"))
        for sub in ("input", "output", "temp", "user"):
            os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        example = os.path.join(comfyui, "input", "example.png")  # ComfyUI's own sample input image
        if os.path.exists(example):
            shutil.copy(example, os.path.join(self.base, "input"))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(self.base, "server.log")
        cmd = [self.python, "main.py", *(["--cpu"] if self.cpu else []), "--listen", "127.0.0.1", "--port", str(port),
               "--base-directory", self.base, "--disable-auto-launch", "--disable-api-nodes", *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.launched_at = time.time()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=comfyui, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        return self

    def wait_ready(self):
        """Wait until a launched server answers GET /system_stats (ServerError if it exits or takes too long)."""
        if self.external or self.startup_seconds is not None:
            return self
        while True:
            if self.proc.poll() is not None:
                log, code = self.log_tail(), self.proc.returncode
                self.stop()
                raise ServerError(f"ComfyUI exited with {code} while starting:\n{log}")
            try:
                with urllib.request.urlopen(self.url + "/system_stats", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.time() - self.launched_at > self.start_timeout:
                log = self.log_tail()
                self.stop()
                raise ServerError(f"ComfyUI did not answer within {self.start_timeout:.0f} s:\n{log}")
            time.sleep(0.2)
        self.startup_seconds = time.time() - self.launched_at
        return self

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # the session we started for it (start_new_session)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=15)
        if self.base and not self.external:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def log_tail(self, chars: int = 6000) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            data = f.read()
        return data[-chars:].decode("utf-8", "replace")

    @property
    def output_dir(self) -> str | None:
        return os.path.join(self.base, "output") if self.base else None

    # ---------------------------------------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, body=None, timeout: float = 60.0):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()  # allow_nan: NaN goes out as the bare token NaN
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path: str, timeout: float = 60.0):
        status, raw = self._request("GET", path, timeout=timeout)
        if status != 200:
            raise ServerError(f"GET {path}: HTTP {status}: {raw[:2000]!r}")
        return json.loads(raw)

    def object_info(self, node_class: str | None = None) -> dict:
        return self.get_json("/object_info" + (f"/{urllib.parse.quote(node_class)}" if node_class else ""))

    def queue_prompt(self, prompt: dict) -> str:
        """POST /prompt; returns the prompt id, or raises PromptRejected (HTTP 400 with node_errors...)."""
        status, raw = self._request("POST", "/prompt", {"prompt": prompt, "client_id": self.client_id})
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if status != 200:
            raise PromptRejected(status, body)
        return body["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 300.0, poll: float = 0.1) -> PromptResult:
        t0 = time.time()
        while True:
            history = self.get_json(f"/history/{prompt_id}")
            entry = history.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and \
                    entry["status"].get("status_str") in ("success", "error"):
                status = entry["status"]
                return PromptResult(prompt_id, status, entry.get("outputs", {}),
                                    [tuple(m[:2]) for m in status.get("messages", [])], time.time() - t0)
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"ComfyUI died while running {prompt_id}:\n{self.log_tail()}")
            if time.time() - t0 > timeout:
                self._request("POST", "/interrupt", {})
                raise ServerError(f"prompt {prompt_id} not done after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(poll)

    def run(self, prompt: dict, timeout: float = 300.0) -> PromptResult:
        """Queue an API-format prompt and wait until it finished (successfully or not)."""
        t0 = time.time()
        result = self.wait(self.queue_prompt(prompt), timeout)
        result.seconds = time.time() - t0
        return result

    def view(self, image: dict) -> bytes:
        """The bytes of one output image record ({filename, subfolder, type}) via GET /view."""
        query = urllib.parse.urlencode({k: image.get(k, "") for k in ("filename", "subfolder", "type")})
        status, raw = self._request("GET", "/view?" + query)
        if status != 200:
            raise ServerError(f"GET /view?{query}: HTTP {status}")
        return raw
