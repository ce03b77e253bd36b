"""Guidance Zoo sweep runner: `python scripts/sweep.py --help` (sweep/cli.py). Runs from any folder."""
import importlib.util
import os
import sys

PACK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "guidance_zoo"


def register_pack() -> None:
    """Import this checkout as the package guidance_zoo (its folder may be named otherwise)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(PACKAGE, os.path.join(PACK, "__init__.py"),
                                                  submodule_search_locations=[PACK])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    register_pack()
    from guidance_zoo.sweep.cli import main
    sys.exit(main())
