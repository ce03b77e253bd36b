"""What a sweep keeps in its output folder: manifest.jsonl (one line per finished cell, appended as it finishes),
the cells' images (named by cell), and results.csv (one row per cell, written at the end)."""
import csv
import json
import os
import threading

from .spec import METHOD, value_label

MANIFEST = "manifest.jsonl"
CSV = "results.csv"
FINISHED = ("ok", "error")  # a node error is an answer too: --resume does not run it again


class Manifest:
    """The append-only JSON-lines record of finished cells; safe to read back after a crash or Ctrl-C."""

    def __init__(self, out_dir: str):
        self.path = os.path.join(out_dir, MANIFEST)
        self.lock = threading.Lock()

    def read(self) -> dict:
        """The last record of each cell key (lines cut off by a crash are skipped)."""
        records = {}
        if not os.path.exists(self.path):
            return records
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                records[record.get("key")] = record
        return records

    def finished(self) -> dict:
        """Records of the cells that need not run again (done, or failed in a node)."""
        return {k: r for k, r in self.read().items() if r.get("status") in FINISHED}

    def append(self, record: dict) -> None:
        """Add one record and flush it to disk at once."""
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


def write_csv(out_dir: str, cells: list, records: dict) -> str:
    """results.csv: per cell its axis values, status, server, timings, files and metrics."""
    metric_keys = sorted({k for r in records.values() for k in (r.get("metrics") or {})})
    axes = list(cells[0].values) if cells else []
    header = ["cell", "name", *axes, "status", "error", "server", "prompt_id", "seconds", "run_seconds",
              "attempts", "files", *metric_keys]
    path = os.path.join(out_dir, CSV)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for cell in cells:
            r = records.get(cell.key, {})
            values = [value_label(a, cell.values[a]).removeprefix("method ") if a == METHOD else cell.values[a]
                      for a in axes]
            metrics = r.get("metrics") or {}
            writer.writerow([cell.index, cell.name, *values, r.get("status", "missing"), r.get("error", ""),
                             r.get("server", ""), r.get("prompt_id", ""), r.get("seconds", ""),
                             r.get("run_seconds", ""), r.get("attempts", ""), " ".join(r.get("files", [])),
                             *(metrics.get(k, "") for k in metric_keys)])
    return path
