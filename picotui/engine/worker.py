"""The worker: the one thread that owns torch and the pipeline. Jobs in through a queue, events out.

Two threads, both daemons:
* "picotui-worker" imports torch (so the UI paints before torch loads), owns the ModelManager, the
  pipeline and the prompt cache, and runs one job at a time;
* "picotui-events" calls `on_event` for every event, in order. Events never come from the caller's
  thread (the UI may call `call_from_thread` in on_event, which refuses the UI's own thread), and a
  slow handler never stalls the denoising loop.

The worker never dies: a PicoError becomes Failed(kind, message); anything else becomes
Failed("internal", "<one line> (details in the log)") with the traceback in the log.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Callable

from picotui.engine.errors import OutOfMemory, PicoError
from picotui.engine.events import Cancelled, EngineStatus, Event, Failed, Loading, Queued
from picotui.engine.request import GenerationRequest

log = logging.getLogger("picotui.worker")

_STOP = object()


def one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Worker:
    def __init__(self, paths, on_event: Callable[[Event], None], *, device: str = "auto",
                 allow_pickle: bool = False, memory_mode: str | None = None, speed: str | None = None):
        self.paths = paths
        self.on_event = on_event
        self.device_request = device or "auto"
        self.allow_pickle = allow_pickle
        self.memory_mode = memory_mode  # None/"auto": the policy decides (or PICOTUI_MEMORY_MODE)
        self.speed = speed  # None/"auto": CUDA graphs where they pay (speed.choose_speed_path)
        self._ids = itertools.count(1)
        self._jobs: deque[tuple[int, GenerationRequest]] = deque()
        self._cond = threading.Condition()
        self._running: int | None = None
        self._cancel = threading.Event()  # set: the running job stops at its next step
        self._stopping = False
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="picotui-worker", daemon=True)
        self._dispatcher = threading.Thread(target=self._dispatch, name="picotui-events", daemon=True)
        self._engine = None  # generate.JobRunner, built in the worker thread (it imports torch)
        self._status = EngineStatus(0, "starting")

    # ---- public API (any thread) ---------------------------------------------------------------
    def start(self) -> Worker:
        self._dispatcher.start()
        self._thread.start()
        return self

    def submit(self, request: GenerationRequest) -> int:
        """Queue a job; returns its id. A Queued event (position = jobs ahead of it) follows."""
        if not isinstance(request, GenerationRequest):
            raise TypeError("submit() takes a GenerationRequest")
        with self._cond:
            if self._stopping:
                raise PicoError("The engine is shutting down: the job was not queued.", kind="stopped")
            job_id = next(self._ids)
            position = len(self._jobs)
            self._jobs.append((job_id, request))
            self._emit(Queued(job_id, position))
            self._cond.notify_all()
        log.info("job %d queued at position %d", job_id, position)
        return job_id

    def cancel(self, job_id: int | None = None) -> bool:
        """Cancel the running job (job_id None or its id) or remove a queued one. True if anything matched."""
        with self._cond:
            if job_id is None or job_id == self._running:
                if self._running is None:
                    return False
                self._cancel.set()
                return True
            for item in list(self._jobs):
                if item[0] == job_id:
                    self._jobs.remove(item)
                    self._emit(Cancelled(job_id))
                    self._requeue_positions()
                    return True
        return False

    def cancel_all(self) -> None:
        """Empty the queue and stop the running job."""
        with self._cond:
            while self._jobs:
                self._emit(Cancelled(self._jobs.popleft()[0]))
            if self._running is not None:
                self._cancel.set()

    @property
    def pending(self) -> int:
        """Jobs waiting (not counting the running one)."""
        with self._cond:
            return len(self._jobs)

    @property
    def running_job(self) -> int | None:
        return self._running

    @property
    def last_status(self) -> EngineStatus:
        """The most recent EngineStatus emitted (a UI that attaches late can paint the status line)."""
        return self._status

    def shutdown(self, timeout: float = 10) -> None:
        """Cancel everything, stop the threads (waiting up to `timeout` s) and emit EngineStatus("stopped")."""
        with self._cond:
            self._stopping = True
            self.cancel_all()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._emit(replace(self._status, job_id=0, state="stopped", queued=0))
        self._events.put(_STOP)
        if self._dispatcher.is_alive():
            self._dispatcher.join(timeout)

    # ---- threads -------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if isinstance(event, EngineStatus):
            self._status = event
        self._events.put(event)

    def _dispatch(self) -> None:
        while True:
            event = self._events.get()
            if event is _STOP:
                return
            try:
                self.on_event(event)
            except Exception:  # a broken handler must not stop the events that follow
                log.exception("on_event handler failed for %s", type(event).__name__)

    def _requeue_positions(self) -> None:
        """Tell every waiting job its new position (after a job started or one was removed)."""
        for position, (job_id, _request) in enumerate(self._jobs):
            self._emit(Queued(job_id, position))

    def _main(self) -> None:
        setup_error: str | None = None
        try:
            self._emit(Loading(0, "importing torch", 0.0))
            from picotui.engine.generate import JobRunner

            self._engine = JobRunner(self.paths, self.device_request, self.allow_pickle, self.memory_mode,
                                     emit=self._emit, speed=self.speed)
            self._emit(self._engine.status(0, "idle"))
        except PicoError as exc:
            setup_error = str(exc)
            self._emit(Failed(0, exc.kind, setup_error))
        except Exception as exc:
            log.exception("engine setup failed")
            setup_error = f"The engine could not start: {one_line(exc)} (details in the log)"
            self._emit(Failed(0, "internal", setup_error))
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job_id, request = self._jobs.popleft()
                self._running = job_id
                self._cancel.clear()
                self._requeue_positions()
            try:
                self._run(job_id, request, setup_error)
            finally:
                with self._cond:
                    self._running = None
                    self._cancel.clear()
                    queued = len(self._jobs)
                status = self._engine.status(job_id, "idle") if self._engine else EngineStatus(job_id, "idle")
                self._emit(replace(status, queued=queued))

    def _run(self, job_id: int, request: GenerationRequest, setup_error: str | None) -> None:
        from picotui.engine.generate import JobCancelled

        started = time.perf_counter()
        try:
            if setup_error is not None:
                raise PicoError(setup_error, kind="internal")
            self._engine.run_job(job_id, request, is_cancelled=self._cancel.is_set)
            log.info("job %d done in %.2f s", job_id, time.perf_counter() - started)
        except JobCancelled:
            log.info("job %d cancelled", job_id)
            self._emit(Cancelled(job_id))
        except OutOfMemory as exc:
            log.warning("job %d: %s", job_id, exc)
            leaner = self._engine.on_out_of_memory() if self._engine else None
            hint = f" The next job uses {leaner.replace('-', ' ')} to need less memory." if leaner else ""
            self._emit(Failed(job_id, exc.kind, f"{exc}{hint}"))
        except PicoError as exc:
            log.info("job %d failed: %s", job_id, exc)
            self._emit(Failed(job_id, exc.kind, str(exc)))
        except Exception as exc:  # the worker never dies: say it in one line, keep the traceback in the log
            log.exception("job %d failed with an internal error", job_id)
            self._emit(Failed(job_id, "internal", f"{one_line(exc)} (details in the log)"))

