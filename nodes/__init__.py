"""Thin V3 nodes of Guidance Zoo: every io.ComfyNode subclass defined in a module of this package is registered."""
import importlib
import inspect
import pkgutil

from comfy_api.latest import ComfyExtension, io


def _discover() -> list[type[io.ComfyNode]]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(obj for _, obj in inspect.getmembers(module, inspect.isclass)
                     if issubclass(obj, io.ComfyNode) and obj.__module__ == module.__name__)
    return found


NODES: list[type[io.ComfyNode]] = _discover()


class GuidanceZooExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES
