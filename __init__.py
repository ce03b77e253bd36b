"""Guidance Zoo: training-free diffusion guidance methods for ComfyUI, on every architecture."""


async def comfy_entrypoint():
    from .nodes import GuidanceZooExtension
    return GuidanceZooExtension()
