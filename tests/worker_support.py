"""Helpers for tests that run a real Worker on CPU: an event collector tests can wait on, starting a worker,
running one job to its end, and the picotui log records of a test."""

from __future__ import annotations

import logging
import threading

import pytest

from picotui.engine.events import Cancelled, EngineStatus, Failed, Finished


class Events:
    """Collects events from the worker's event thread; tests wait on conditions over them."""

    def __init__(self):
        self.items: list = []
        self.cond = threading.Condition()
        self.threads: set[str] = set()
        self.hook = None  # optional callable run for each event (in the event thread), before it is recorded
        self.after = None  # optional callable run after an event is recorded (a handler that fails late)

    def __call__(self, event):
        self.threads.add(threading.current_thread().name)
        if self.hook:
            self.hook(event)
        with self.cond:
            self.items.append(event)
            self.cond.notify_all()
        if self.after:
            self.after(event)

    def wait(self, predicate, timeout=60):
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.items), timeout), [type(e).__name__ for e in self.items]

    def of(self, kind, job_id=None):
        with self.cond:
            return [e for e in self.items if isinstance(e, kind) and (job_id is None or e.job_id == job_id)]

    def done(self, job_id):
        def check(items):
            for e in items:
                if e.job_id != job_id:
                    continue
                if isinstance(e, (Failed, Cancelled)) or (isinstance(e, Finished) and e.image_index + 1 == e.batch_count):
                    return True
            return False
        return check


def start_worker(paths, **kw):
    """A started Worker on CPU with an Events collector as `.events`, once it has said its first status."""
    from picotui.engine.jobs.worker import Worker

    events = Events()
    w = Worker(paths, events, device="cpu", **kw).start()
    w.events = events
    events.wait(lambda items: any(isinstance(e, (EngineStatus, Failed)) and e.job_id == 0 for e in items), 120)
    return w


@pytest.fixture(scope="module")
def worker(paths):
    """A Worker on CPU for the whole module, over the `paths` fixture of the module that uses it."""
    w = start_worker(paths)
    yield w
    w.shutdown()


def run(worker, req, timeout=120):
    """Submit `req` and wait until its job has ended; returns the job id."""
    job = worker.submit(req)
    worker.events.wait(worker.events.done(job), timeout)
    return job


@pytest.fixture
def log_records():
    """Every record logged under "picotui" during the test."""
    records = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger("picotui")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
