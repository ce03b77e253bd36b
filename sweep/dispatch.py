"""Runs a sweep's jobs over its servers: a small window in flight per server, progress from websocket events,
jobs of a server that errs, disconnects or times out retried on another, node errors recorded as answers."""
import collections
import os
import queue
import time

from .comfy_server import PromptRejected, PromptResult, ServerError
from .metrics import cell_metrics
from .progress import Progress
from .remote import Job, Remote, Running

POLL_S = 2.0  # a history check per job in flight, in case an event was missed


class NoServerLeft(RuntimeError):
    """Every server has failed; what is finished is in the manifest."""


class Dispatcher:
    def __init__(self, remotes: list[Remote], events: queue.Queue, manifest, out_dir: str, window: int = 2,
                 timeout: float = 600.0, max_attempts: int = 3, progress: Progress | None = None):
        self.remotes, self.events, self.manifest, self.out_dir = remotes, events, manifest, out_dir
        self.window, self.timeout, self.max_attempts = window, timeout, max_attempts
        self.pending: collections.deque[Job] = collections.deque()
        self.progress = progress
        self.records: dict = {}

    def run(self, jobs: list[Job]) -> dict:
        """Run every job; returns the records written (key -> record). Ctrl-C cancels what is in flight."""
        self.pending.extend(jobs)
        last_poll = time.time()
        try:
            while self.pending or self._inflight():
                self._fill()
                if not any(r.alive for r in self.remotes):
                    raise NoServerLeft("no server left: " + "; ".join(f"{r.url}: {r.reason}" for r in self.remotes))
                self._drain(0.25)
                if time.time() - last_poll > POLL_S:
                    self._poll()
                    last_poll = time.time()
                if self.progress:
                    self.progress.draw(self.remotes)
        except KeyboardInterrupt:
            for remote in self.remotes:
                if remote.alive and remote.inflight:
                    remote.cancel(list(remote.inflight))
            raise
        finally:
            if self.progress:
                self.progress.draw(self.remotes, final=True)
        return self.records

    def _inflight(self) -> int:
        return sum(len(r.inflight) for r in self.remotes if r.alive)

    def _next_job(self, remote: Remote) -> Job | None:
        """The first pending job not yet tried on this server, or one that every other live server has tried."""
        for job in self.pending:
            others = [r for r in self.remotes if r is not remote and r.alive and r.url not in job.tried]
            if remote.url not in job.tried or not others:
                self.pending.remove(job)
                return job
        return None

    def _fill(self) -> None:
        """Queue jobs on every live server until its window is full."""
        for remote in self.remotes:
            while remote.alive and len(remote.inflight) < self.window and self.pending:
                job = self._next_job(remote)
                if job is None:
                    break
                job.attempts += 1
                try:
                    remote.submit(job)
                except PromptRejected as error:
                    if error.status >= 500:
                        self._lost(remote, f"POST /prompt: {error}", [job])
                        break
                    self._record(job, remote, None, "error", error.summary())
                    continue
                except (ServerError, OSError) as error:
                    self._lost(remote, f"POST /prompt: {error}", [job])
                    break

    def _drain(self, wait: float) -> None:
        """Handle every event that arrives within `wait` seconds."""
        try:
            remote, kind, data = self.events.get(timeout=wait)
        except queue.Empty:
            return
        while True:
            if kind == "lost":
                if remote.alive:
                    self._lost(remote, data["reason"])
            elif remote.alive:
                finished = remote.on_event(kind, data)
                if finished:
                    self._finish(remote, finished)
            try:
                remote, kind, data = self.events.get_nowait()
            except queue.Empty:
                return

    def _poll(self) -> None:
        """Check the history of each job in flight (missed events) and time out the stuck ones."""
        for remote in self.remotes:
            for prompt_id, running in list(remote.inflight.items()):
                if not remote.alive:
                    break
                if time.time() - running.sent > self.timeout:
                    remote.cancel([prompt_id])
                    del remote.inflight[prompt_id]
                    running.job.tried.append(remote.url)
                    self._retry(running.job, f"timed out after {self.timeout:g} s on {remote.url}")
                    continue
                self._finish(remote, prompt_id, defer=remote.ws is not None)

    def _lost(self, remote: Remote, reason: str, extra: tuple = ()) -> None:
        """A server failed: stop using it and retry its jobs in flight (and `extra`, not sent) elsewhere."""
        remote.alive, remote.reason = False, reason
        jobs = [r.job for r in remote.inflight.values()] + list(extra)
        remote.inflight.clear()
        if self.progress:
            self.progress.note(f"server {remote.url} dropped ({reason.splitlines()[0]}); "
                               f"{len(jobs)} cell(s) go to the other servers")
        for job in jobs:
            job.tried.append(remote.url)
            self._retry(job, f"{remote.url}: {reason}")

    def _retry(self, job: Job, reason: str) -> None:
        """Queue a job again, or record it as failed after max_attempts."""
        if job.attempts >= self.max_attempts:
            self._record(job, None, None, "failed", f"gave up after {job.attempts} attempts; last: {reason}")
        else:
            self.pending.appendleft(job)

    def _finish(self, remote: Remote, prompt_id: str, defer: bool = False) -> None:
        """Fetch a prompt's history; if it has finished, its images, and record it. defer: a poll of a server with
        an event stream finishes it only on the next poll (its last progress events may still be on the way)."""
        running = remote.inflight.get(prompt_id)
        if running is None:
            return
        try:
            entry = remote.client.get_json(f"/history/{prompt_id}", timeout=30).get(prompt_id)
            status = (entry or {}).get("status", {})
            if not entry or status.get("status_str") not in ("success", "error"):
                return
            if defer and running.seen_done is None:
                running.seen_done = time.time()
                return
            result = PromptResult(prompt_id, status, entry.get("outputs", {}),
                                  [tuple(m[:2]) for m in status.get("messages", [])])
            del remote.inflight[prompt_id]
            if not result.ok:
                self._record(running.job, remote, prompt_id, "error", result.error_message, running=running)
                return
            images = [remote.client.view(image) for image in result.images()]
        except (ServerError, OSError, ValueError) as error:
            if prompt_id not in remote.inflight:
                remote.inflight[prompt_id] = running
            self._lost(remote, f"fetching results: {error}")
            return
        files = self._save(running.job, images)
        remote.done += 1
        self._record(running.job, remote, prompt_id, "ok", "", files, cell_metrics(running.job.prompt, images),
                     running)

    def _save(self, job: Job, images: list[bytes]) -> list[str]:
        """Write a job's images into the output folder, named by its (first) cell."""
        names = []
        for n, data in enumerate(images):
            name = f"{job.cells[0].name}.png" if len(images) == 1 else f"{job.cells[0].name}_{n + 1}.png"
            with open(os.path.join(self.out_dir, name), "wb") as f:
                f.write(data)
            names.append(name)
        return names

    def _record(self, job: Job, remote, prompt_id, status, error, files=(), metrics=None,
                running: Running | None = None) -> None:
        """Append a job's manifest line (for all its cells) and keep it for the grid and CSV. seconds: from POST
        to done; run_seconds: from the server starting it; steps: the sampler steps its progress events counted."""
        now = time.time()
        seconds = round(now - running.sent, 3) if running else 0.0
        run_seconds = round(now - running.started, 3) if running and running.started else None
        record = {"key": job.key, "cells": [c.name for c in job.cells], "values": job.cells[0].values,
                  "status": status, "error": error, "server": remote.url if remote else "", "prompt_id": prompt_id,
                  "seconds": seconds, "run_seconds": run_seconds, "steps": running.maximum if running else 0,
                  "attempts": job.attempts, "tried": job.tried, "files": list(files),
                  "metrics": metrics or {}, "finished_at": round(time.time(), 3)}
        self.manifest.append(record)
        self.records[job.key] = record
        if self.progress:
            self.progress.cell_done(record)
