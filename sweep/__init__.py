"""Headless batch runs of one's own workflow over guidance methods and settings: `python scripts/sweep.py --help`."""
