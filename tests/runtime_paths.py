"""Where the ComfyUI tree and the pack are, and how to import the pack under a fixed package name."""
import importlib.util
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "guidance_zoo"


def comfyui_path() -> str:
    """COMFYUI_PATH if set, else the tree beside the running venv (.runtime/<version>/ComfyUI, setup_runtime.sh)."""
    path = os.environ.get("COMFYUI_PATH") or os.path.join(os.path.dirname(sys.prefix), "ComfyUI")
    if not os.path.isfile(os.path.join(path, "comfy", "samplers.py")):
        raise RuntimeError(f"no ComfyUI at {path}: run scripts/setup_runtime.sh or set COMFYUI_PATH")
    return path


def runtime_python(version: str) -> str | None:
    """The python of the ComfyUI `version` runtime (scripts/setup_runtime.sh builds it if needed), None if that
    version cannot be built here."""
    setup = subprocess.run(["bash", os.path.join(REPO, "scripts", "setup_runtime.sh"), version],
                           stdout=subprocess.PIPE, text=True)
    if setup.returncode == 3:
        return None
    setup.check_returncode()
    return setup.stdout.strip().splitlines()[-1]


def register_pack() -> None:
    """Import the repo as the package `guidance_zoo`, whatever the checkout's folder is called."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(PACKAGE, os.path.join(REPO, "__init__.py"),
                                                  submodule_search_locations=[REPO])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


def use_comfyui() -> None:
    """Put ComfyUI on sys.path in library mode on the CPU (before comfy.model_management is imported)."""
    path = comfyui_path()
    if path not in sys.path:
        sys.path.insert(0, path)
    from comfy.cli_args import args
    args.cpu = True
    args.use_pytorch_cross_attention = True
