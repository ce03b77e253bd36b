"""Module-scoped fixtures for tests that talk to a real ComfyUI server on the stand-in models."""
import pytest

import standins
from comfy_server import ComfyServer


@pytest.fixture(scope="module")
def server():
    with ComfyServer(models_dir=standins.models_dir()) as s:
        yield s


@pytest.fixture(scope="module")
def object_info(server):
    return server.object_info()
