"""The pack's layers import one way: core <- attention_patches <- guiders <- nodes, core imports no ComfyUI, and
nothing imports the test harness (harness/, tests/) or the scripts."""
import ast
import os

import pytest

import runtime_paths

LAYERS = ("core", "attention_patches", "guiders", "nodes")
PACKAGES = set(LAYERS) | {"sweep"}
COMFY_MODULES = ("comfy", "comfy_api", "comfy_extras", "comfy_execution", "node_helpers", "folder_paths", "server")


def modules(layer: str) -> list[str]:
    folder = os.path.join(runtime_paths.REPO, layer)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".py"))


def imported(path: str, layer: str) -> list[tuple[str, int]]:
    """(top-level name, line) of every import in the file, relative imports resolved to the pack's packages."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append(((node.module or "").split(".")[0], node.lineno))
            elif node.level == 1:
                found.append((layer, node.lineno))
            else:
                head = (node.module or "").split(".")[0]
                found.extend([(head, node.lineno)] if head else
                             [(alias.name, node.lineno) for alias in node.names])
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_lower_layers(layer):
    allowed = set(LAYERS[:LAYERS.index(layer) + 1])
    wrong = []
    for path in modules(layer):
        for name, line in imported(path, layer):
            if name in PACKAGES and name not in allowed or name in ("tests", "harness", "scripts", "runtime_paths"):
                wrong.append(f"{os.path.relpath(path, runtime_paths.REPO)}:{line} imports {name}")
    assert not wrong, f"{layer} may import only {sorted(allowed)}:\n" + "\n".join(wrong)


def test_core_imports_no_comfyui():
    wrong = [f"{os.path.relpath(path, runtime_paths.REPO)}:{line} imports {name}"
             for path in modules("core") for name, line in imported(path, "core") if name in COMFY_MODULES]
    assert not wrong, "core/ holds pure tensor kernels, without ComfyUI:\n" + "\n".join(wrong)


def test_the_scan_sees_imports():
    assert ("core", 4) in imported(os.path.join(runtime_paths.REPO, "core", "pag.py"), "core")
    names = {name for path in modules("nodes") for name, _ in imported(path, "nodes")}
    assert {"core", "attention_patches", "guiders", "nodes", "comfy_api"} <= names
