"""The real ComfyUI frontend of a running ComfyServer in headless Chromium (Debian's /usr/bin/chromium driven by
Playwright), for the workflow tests and scripts/workflow_screenshots.py.

    with Frontend(server) as ui:
        ui.drop("pag_sdxl.json", text)      # the frontend's own file-drop path, as a user drops the file
        ui.geometry()                       # nodes, groups, view, what covers each node, the note's overflow
        ui.prompt()                         # app.graphToPrompt().output

The server's user settings mark the first-run tutorial as done (so no template browser opens); nothing else is set.
"""
import json
import os
import shutil
import tempfile
import time

CHROMIUM = os.environ.get("GZ_CHROMIUM", "/usr/bin/chromium")
WINDOW = {"width": 1920, "height": 1080}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "frontend_geometry.js"), encoding="utf-8") as _f:
    GEOMETRY_JS = _f.read()


def missing() -> str | None:
    """Why the browser tests cannot run here (one line), or None."""
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no Playwright (pip install -r scripts/requirements-common.txt)"
    return None


class Frontend:
    """One browser page on the server's frontend; page errors and error toasts are collected."""

    def __init__(self, server):
        self.server, self.errors = server, []

    def __enter__(self):
        from playwright.sync_api import sync_playwright
        settings = os.path.join(self.server.base, "user", "default")
        os.makedirs(settings, exist_ok=True)
        with open(os.path.join(settings, "comfy.settings.json"), "w") as f:
            json.dump({"Comfy.TutorialCompleted": True}, f)
        self.profile = tempfile.mkdtemp(prefix="gz-chromium-")
        self.playwright = sync_playwright().start()
        self.context = self.playwright.chromium.launch_persistent_context(
            self.profile, executable_path=CHROMIUM, headless=True, args=ARGS, viewport=WINDOW)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(self.server.url)
        self.page.wait_for_function("window.app && app.graph && app.canvas && app.vueAppReady !== false",
                                    timeout=120_000)
        self.page.wait_for_timeout(1500)
        self.version = self.page.evaluate("window.__COMFYUI_FRONTEND_VERSION__")
        return self

    def __exit__(self, *exc):
        self.context.close()
        self.playwright.stop()
        shutil.rmtree(self.profile, ignore_errors=True)
        return False

    def drop(self, filename: str, text: str, node_count: int) -> float:
        """Drop a workflow file on the canvas, as a user does; returns the seconds until its nodes are loaded."""
        start = time.time()
        self.page.evaluate("""([name, text]) => {
            const data = new DataTransfer();
            data.items.add(new File([text], name, {type: 'application/json'}));
            app.canvas.canvas.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true,
                                                                   dataTransfer: data}));
        }""", [filename, text])
        self.page.wait_for_function(f"app.graph._nodes.length === {node_count} && "
                                    f"app.graph._nodes.every(n => n.widgets !== undefined || !n.widgets_values)",
                                    timeout=30_000)
        self.page.wait_for_timeout(400)  # the first frames: DOM widgets are placed on draw
        self.page.wait_for_function("!document.querySelector('.p-blockui-mask')", timeout=30_000)  # tab switch
        return time.time() - start

    def geometry(self) -> dict:
        """Nodes (screen rects, sizes, seed controls), groups, the view and whatever covers a node."""
        return self.page.evaluate(GEOMETRY_JS)

    def prompt(self) -> dict:
        """The API prompt the frontend itself would queue."""
        return self.page.evaluate("async () => (await app.graphToPrompt()).output")

    def notices(self) -> list[str]:
        """Text of the visible dialogs and toasts."""
        return self.page.evaluate("""() => Array.from(document.querySelectorAll(
            '.p-dialog, .p-toast-message, [role=alertdialog]')).filter(e => e.offsetParent !== null ||
            getComputedStyle(e).position === 'fixed').map(e => e.innerText.trim().slice(0, 200))""")

    def queue(self) -> None:
        """Click the Run (Queue) button of the frontend's action bar."""
        self.page.get_by_role("button", name="Run", exact=True).first.click()

    def screenshot(self, path: str) -> None:
        self.page.screenshot(path=path)
