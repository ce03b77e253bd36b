"""Progress of a sweep on the terminal: a bar per server (the sampler steps of the prompt it runs) and one
overall (cells done, errors, ETA), redrawn in place on a terminal; one line per finished cell otherwise."""
import sys
import time

BAR = 24


def bar(fraction: float, width: int = BAR) -> str:
    """'[#####-----]' for a fraction in [0, 1]."""
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def clock(seconds: float) -> str:
    """'1:05' or '1:02:03'."""
    seconds = int(max(0, seconds))
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, total: int, stream=sys.stderr, live: bool | None = None):
        self.total, self.stream = total, stream
        self.live = stream.isatty() if live is None else live
        self.done = self.errors = 0
        self.start = time.time()
        self.drawn = 0
        self.last = 0.0

    def overall(self) -> str:
        """The overall line: cells done of total, errors, elapsed and ETA."""
        elapsed = time.time() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        return (f"{bar(self.done / max(self.total, 1))} {self.done}/{self.total} cells, {self.errors} failed, "
                f"{clock(elapsed)} elapsed" + (f", ETA {clock(eta)}" if self.done and self.done < self.total else ""))

    def server_line(self, remote) -> str:
        """One server's line: its running prompt's step bar, its queue, cells it finished."""
        if not remote.alive:
            return f"{remote.url}: dropped ({remote.reason.splitlines()[0][:80]})"
        running = [r for r in remote.inflight.values() if r.started]
        steps = f"{running[0].value}/{running[0].maximum} steps" if running and running[0].maximum else "waiting"
        fraction = running[0].value / running[0].maximum if running and running[0].maximum else 0.0
        name = running[0].job.cells[0].name if running else ""
        return f"{remote.url} {bar(fraction, 16)} {steps}, {len(remote.inflight)} in flight, {remote.done} done {name}"

    def draw(self, remotes: list, final: bool = False) -> None:
        """Redraw the bars (at most 5 times a second) on a terminal."""
        if not self.live or (not final and time.time() - self.last < 0.2):
            return
        self.last = time.time()
        lines = [self.server_line(r) for r in remotes] + [self.overall()]
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F")
        self.stream.write("".join(f"\x1b[2K{line}\n" for line in lines))
        self.stream.flush()
        self.drawn = len(lines)

    def note(self, text: str) -> None:
        """A message that stays (above the bars)."""
        self._say(text)

    def cell_done(self, record: dict) -> None:
        """Count a finished cell; off a terminal, print its line."""
        self.done += len(record["cells"])
        if record["status"] != "ok":
            self.errors += len(record["cells"])
        where = f" on {record['server']}" if record["server"] else ""
        detail = f"{record['seconds']:.1f} s" if record["status"] == "ok" else record["error"].splitlines()[0][:200]
        if not self.live or record["status"] != "ok":
            self._say(f"[{self.done}/{self.total}] {record['cells'][0]} {record['status']}{where}: {detail}")

    def _say(self, text: str) -> None:
        if self.live and self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0
        self.stream.write(text + "\n")
        self.stream.flush()
