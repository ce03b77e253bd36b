"""`python -m guidance_zoo.sweep` (from the folder that holds the pack as guidance_zoo)."""
import sys

from .cli import main

sys.exit(main())
