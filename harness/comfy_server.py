"""The tests' name for the pack's headless-server client, which ships in sweep/comfy_server.py (one copy)."""
import runtime_paths

runtime_paths.register_pack()

from guidance_zoo.sweep.comfy_server import (ComfyServer, PromptRejected, PromptResult, ServerError,  # noqa: E402,F401
                                             find_comfyui, free_port)
