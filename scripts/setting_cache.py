"""Finished settings of a long benchmark, one JSON file each, so a run can stop and later continue where it stopped
(`scripts/benchmark_digits.py --resume DIR`): on a slow CPU the full digits benchmark takes longer than a session."""
import base64
import hashlib
import json
import os
import re

import numpy as np


def file_digest(path: str) -> str:
    """The first 16 hex digits of a file's SHA-256 (which weights a cached row was measured on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def pack_tiles(tiles: np.ndarray | None) -> dict | None:
    """uint8 image tiles as JSON: shape and base64 bytes."""
    if tiles is None:
        return None
    return {"shape": list(tiles.shape), "uint8": base64.b64encode(np.ascontiguousarray(tiles).tobytes()).decode()}


def unpack_tiles(packed: dict | None) -> np.ndarray | None:
    """The inverse of pack_tiles."""
    if packed is None:
        return None
    return np.frombuffer(base64.b64decode(packed["uint8"]), dtype=np.uint8).reshape(packed["shape"]).copy()


class SettingCache:
    """Results by setting label under `folder`, valid only for the same run key (weights, sampling options)."""

    def __init__(self, folder: str, run_key: dict):
        self.folder, self.run_key = folder, run_key
        os.makedirs(folder, exist_ok=True)

    def _path(self, label: str) -> str:
        return os.path.join(self.folder, re.sub(r"[^A-Za-z0-9.]+", "_", label).strip("_") + ".json")

    def get(self, label: str, setting_key: dict) -> dict | None:
        """The stored outcome of this setting, or None if it is missing or was measured under another key."""
        try:
            with open(self._path(label), encoding="utf-8") as f:
                stored = json.load(f)
        except (OSError, ValueError):
            return None
        if stored.get("run_key") != self.run_key or stored.get("setting_key") != setting_key:
            return None
        return stored["outcome"]

    def put(self, label: str, setting_key: dict, outcome: dict) -> None:
        """Store one setting's outcome (JSON-serialisable), written whole or not at all."""
        path = self._path(label)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"run_key": self.run_key, "setting_key": setting_key, "outcome": outcome}, f)
        os.replace(path + ".tmp", path)
