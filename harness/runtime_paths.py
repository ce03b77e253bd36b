"""Where the ComfyUI tree and the pack are, and how to import the pack under a fixed package name."""
import importlib.util
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "guidance_zoo"


def comfyui_path() -> str:
    """The ComfyUI tree (COMFYUI_PATH, the one the pack is installed in, or the one beside the running venv)."""
    register_pack()
    from guidance_zoo.sweep.comfy_server import find_comfyui
    return find_comfyui()


# The ComfyUI versions the suite runs on (scripts/setup_runtime.sh builds each; scripts/test.sh runs them in order).
COMFYUI_VERSIONS = ("0.3.75", "0.33.0")


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
    """Import the repo as the package `guidance_zoo`, whatever the checkout's folder is called (the shipped
    scripts/sweep.py does it for the sweep runner; its function is used here)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("guidance_zoo_launcher", os.path.join(REPO, "scripts", "sweep.py"))
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    launcher.register_pack()


def use_comfyui(cpu: bool = True) -> None:
    """Put ComfyUI on sys.path in library mode, on the CPU unless cpu is False (then ComfyUI picks the GPU), before
    comfy.model_management is imported."""
    path = comfyui_path()
    if path not in sys.path:
        sys.path.insert(0, path)
    from comfy.cli_args import args
    args.cpu = cpu
    args.use_pytorch_cross_attention = True
