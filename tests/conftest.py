import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runtime_paths  # noqa: E402

runtime_paths.register_pack()
