"""Pure tensor kernels of Guidance Zoo. Nothing here imports ComfyUI."""
