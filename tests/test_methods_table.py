"""The README's methods table is scripts/methods_table.py's rendering of the nodes' METHOD_INFO, and every method node
the pack registers has its METHOD_INFO in nodes/methods.py."""
import asyncio
import importlib.util
import os
import sys

import runtime_paths
import support_matrix

runtime_paths.use_comfyui()

import guidance_zoo  # noqa: E402
from guidance_zoo.nodes.common import PREFIX  # noqa: E402
from guidance_zoo.nodes.methods import METHODS, by_node_id  # noqa: E402

# registered nodes that are no guidance method (no README row): the digits model's loader, prompt and decoder
NOT_METHODS = frozenset({"GuidanceZooDigitsModelLoader", "GuidanceZooDigitPrompt", "GuidanceZooDigitsDecode"})


def _script():
    spec = importlib.util.spec_from_file_location("methods_table_script",
                                                  os.path.join(runtime_paths.REPO, "scripts", "methods_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _registered() -> dict[str, type]:
    """{node id: class} of the nodes comfy_entrypoint's extension lists."""
    extension = asyncio.run(guidance_zoo.comfy_entrypoint())
    return {node.define_schema().node_id: node for node in asyncio.run(extension.get_node_list())}


def test_readme_methods_table_is_the_nodes_metadata():
    script = _script()
    with open(os.path.join(runtime_paths.REPO, "README.md"), encoding="utf-8") as f:
        block = support_matrix.readme_block(f.read(), script.START, script.END)
    assert block is not None, "README.md has no methods-table block: run scripts/methods_table.py"
    assert block == script.render(), "README.md's methods table differs from the nodes' METHOD_INFO: run " \
                                     "scripts/methods_table.py"


def test_every_registered_method_node_is_in_the_registry():
    registered = set(_registered())
    listed = [node_id for method in METHODS for node_id in method.node_ids(PREFIX)]
    assert len(listed) == len(set(listed)), "a node is listed by two methods"
    assert registered - NOT_METHODS - set(listed) == set(), "method nodes without METHOD_INFO in nodes/methods.py"
    assert set(listed) - registered == set(), "METHOD_INFO names nodes the pack does not register"
    assert not NOT_METHODS & set(listed)


def test_each_method_info_is_its_nodes_module_and_names_them():
    for node_id, node in _registered().items():
        method = by_node_id().get(node_id)
        if method is None:
            continue
        assert sys.modules[node.__module__].METHOD_INFO is method, node_id
        named = next(n for n in method.nodes if PREFIX + n.id == node_id)
        display = node.define_schema().display_name.removesuffix(" (Guidance Zoo)")
        assert not named.bold or (named.label or method.name).startswith(display), (node_id, named, display)
        assert method.arxiv or method.claim_label or not method.claim, method.name
