"""The worker: the one thread that owns torch and the pipeline. Jobs in through a queue, events out.

Two threads, both daemons:
* "picotui-worker" imports torch (so the UI paints before torch loads), owns the ModelManager, the
  pipeline and the prompt cache, and runs one job at a time;
* "picotui-events" calls `on_event` for every event, in order. Events never come from the caller's
  thread (the UI may call `call_from_thread` in on_event, which refuses the UI's own thread), and a
  slow handler never stalls the denoising loop.

The worker never dies: a PicoError becomes Failed(kind, message); a GPU out-of-memory error, wherever
it happens (load, prompt encode, LoRA, a step, decode), becomes Failed("out-of-memory", ...) after the
memory is freed and the memory plan steps up (out of memory in a hires pass is first retried by the runner,
that pass alone, see jobs/second_pass.py); anything else becomes Failed("internal", "<one line>
(details in the log)") with the traceback in the log. Every step of the loop is guarded (reading the
status, freeing memory, a broken event handler): the next job always runs.

Cancelling. `cancel(job_id)` names the job the user sees; a cancel for a job that already ended (escape
pressed many times, or late) matches nothing and returns False, so it never spills onto the next job.
`cancel()` without an id stops whatever runs now: only for callers that cannot know the id. A cancel
takes effect at the next check:
* loading: between the load stages (reading the checkpoint, building UNet / text encoder / VAE, moving
  to the GPU, each VAE or LoRA file); the half-built pipeline is dropped, the next job loads afresh;
* before the first step, and after every model evaluation (so within one step, the last one included);
* after the VAE decode, and during the save until the PNG gets its final name: the image is discarded,
  no PNG (and no temp file) is left, and the job ends with Cancelled;
* once the save has claimed the final name (the link/rename that publishes the finished file), the save
  completes and the image is reported as Finished: a complete PNG is never deleted or left half-written.
With a batch, images finished before the cancel stay saved (each had its own Finished event).
Every job ends with exactly one of: its last Finished, Failed, or Cancelled.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from picotui.engine.errors import JobCancelled, OutOfMemory, PicoError, is_out_of_memory, one_line
from picotui.engine.events import Cancelled, EngineStatus, Event, Failed, Finished, Loading, Notice, Queued
from picotui.engine.request import GenerationRequest
from picotui.engine.upscaling.request import UpscaleRequest

log = logging.getLogger("picotui.worker")

_STOP = object()
MAX_OOM_RETRIES = 3  # each retry steps the memory plan up once; beyond three the job fails with advice



class Worker:
    def __init__(self, paths, on_event: Callable[[Event], None], *, device: str = "auto",
                 allow_pickle: bool = False, memory_mode: str | None = None, speed: str | None = None,
                 preview: bool = True):
        self.paths = paths
        self.preview = preview  # Step events carry a latent preview; off where nothing draws it (headless)
        self.on_event = on_event
        self.device_request = device or "auto"
        self.allow_pickle = allow_pickle
        self.memory_mode = memory_mode  # None/"auto": the policy decides (or PICOTUI_MEMORY_MODE)
        self.speed = speed  # None/"auto": CUDA graphs where they pay (speed.choose_speed_path)
        self._ids = itertools.count(1)
        self._jobs: deque[tuple[int, GenerationRequest]] = deque()
        self._cond = threading.Condition()
        self._running: int | None = None
        self._running_ended = False  # the running job's last event (Finished/Failed/Cancelled) is out
        self._cancel = threading.Event()  # set: the running job stops at its next step
        self._stopping = False
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="picotui-worker", daemon=True)
        self._dispatcher = threading.Thread(target=self._dispatch, name="picotui-events", daemon=True)
        self._engine = None  # jobs.JobRunner, built in the worker thread (it imports torch)
        self._status = EngineStatus(0, "starting")

    # ---- public API (any thread) ---------------------------------------------------------------
    def start(self) -> Worker:
        self._dispatcher.start()
        self._thread.start()
        return self

    def submit(self, request: GenerationRequest | UpscaleRequest) -> int:
        """Queue a job; returns its id. A Queued event (position = jobs ahead of it) follows."""
        if not isinstance(request, (GenerationRequest, UpscaleRequest)):
            raise TypeError("submit() takes a GenerationRequest or an UpscaleRequest")
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
        """Cancel job `job_id`: stop it if it runs, remove it if it waits. True if it matched one of those.

        A job that already ended matches nothing (False), whatever runs now: pass the id of the job the
        user sees, so a cancel pressed late or many times never stops the next job. `job_id` None stops
        whatever runs at this moment (racy by nature; prefer the id). A stopped running job ends with one
        Cancelled event at its next cancel check (see the module docstring); a removed queued job gets
        its Cancelled event at once. True can still end in Finished when the cancel came after the PNG's
        save had passed the point of no return (its final name claimed).
        """
        with self._cond:
            if job_id is None or job_id == self._running:
                if self._running is None or self._running_ended:
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
        elif isinstance(event, (Finished, Failed, Cancelled)) and event.job_id == self._running and (
                not isinstance(event, Finished) or event.image_index + 1 == event.batch_count):
            with self._cond:
                self._running_ended = True  # from now on a cancel for it is stale
        self._events.put(event)

    def _dispatch(self) -> None:
        while True:
            event = self._events.get()
            if event is _STOP:
                return
            try:
                self.on_event(event)
            except BaseException:  # a broken handler must not stop the events that follow
                log.exception("on_event handler failed for %s", type(event).__name__)

    def _requeue_positions(self) -> None:
        """Tell every waiting job its new position (after a job started or one was removed)."""
        for position, (job_id, _request) in enumerate(self._jobs):
            self._emit(Queued(job_id, position))

    def _main(self) -> None:
        setup_error: str | None = None
        try:
            self._emit(Loading(0, "importing torch", 0.0))
            from picotui.engine.jobs.runner import JobRunner

            self._engine = JobRunner(self.paths, self.device_request, self.allow_pickle, self.memory_mode,
                                     emit=self._emit, speed=self.speed, preview=self.preview)
        except PicoError as exc:
            setup_error = str(exc)
            self._emit(Failed(0, exc.kind, setup_error))
        except BaseException as exc:
            log.exception("engine setup failed")
            setup_error = f"The engine could not start: {one_line(exc, 200)} (details in the log)"
            self._emit(Failed(0, "internal", setup_error))
        if self._engine is not None:
            self._emit_status(0, "idle")
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job_id, request = self._jobs.popleft()
                self._running = job_id
                self._running_ended = False
                self._cancel.clear()
                self._requeue_positions()
            try:
                self._run(job_id, request, setup_error)
            except BaseException as exc:  # _run's own handlers failed (an emit, freeing memory): say so, go on
                log.exception("job %d: the worker's error handling failed", job_id)
                self._emit(Failed(job_id, "internal", f"{one_line(exc, 200)} (details in the log)"))
            finally:
                with self._cond:
                    self._running = None
                    self._cancel.clear()
                self._emit_status(job_id, "idle")

    def _emit_status(self, job_id: int, state: str) -> None:
        """The engine status after a job (or setup). Reading it touches the GPU (free memory), which can
        fail after a CUDA error: then the last status stands, with a warning, and the worker goes on."""
        with self._cond:
            queued = len(self._jobs)
        try:
            status = self._engine.status(job_id, state) if self._engine else EngineStatus(job_id, state)
        except BaseException as exc:
            log.exception("reading the engine status failed")
            status = replace(self._status, job_id=job_id, state=state)
            self._emit(Notice(job_id, f"Could not read the GPU status ({one_line(exc, 120)}): the status line may "
                                      f"be out of date; details in the log.", "warning"))
        self._emit(replace(status, queued=queued))

    def _run(self, job_id: int, request: GenerationRequest, setup_error: str | None) -> None:
        started = time.perf_counter()
        retries = done = 0
        total = request.batch_count
        while True:
            retry = self._attempt(job_id, request, setup_error, retries, done)
            if retry is None:
                break
            request, retries, done = retry, retries + 1, total - retry.batch_count
        log.info("job %d ended after %.2f s", job_id, time.perf_counter() - started)

    def _attempt(self, job_id: int, request: GenerationRequest, setup_error: str | None, retries: int,
                 done_before: int) -> GenerationRequest | None:
        """Run the job once; returns what is left of it to run again (after out-of-memory), else None."""
        try:
            if setup_error is not None:
                raise PicoError(setup_error, kind="internal")
            if isinstance(request, UpscaleRequest):  # the Extras job: upscale a picture file
                from picotui.engine.jobs.extras import run_upscale_job

                run_upscale_job(self._engine, job_id, request, self._cancel.is_set, self._emit)
            else:
                self._engine.run_job(job_id, request, is_cancelled=self._cancel.is_set, done_before=done_before)
        except JobCancelled:
            log.info("job %d cancelled", job_id)
            self._emit(Cancelled(job_id))
        except MemoryError:  # the computer's RAM, not the GPU's: nothing picotui can lean on helps
            log.exception("job %d: out of system memory", job_id)
            self._free_after_failure()
            self._emit(Failed(job_id, OutOfMemory.kind, "Out of system memory (RAM): close other programs, or "
                                                        "add swap, then try again."))
        except Exception as exc:
            if is_out_of_memory(exc):  # the one place any out-of-memory error becomes OutOfMemory
                return self._out_of_memory(job_id, request, exc, retries)
            if isinstance(exc, PicoError):
                log.info("job %d failed: %s", job_id, exc)
                self._emit(Failed(job_id, exc.kind, str(exc)))
            else:  # the worker never dies: say it in one line, keep the traceback in the log
                log.exception("job %d failed with an internal error", job_id)
                self._emit(Failed(job_id, "internal", f"{one_line(exc, 200)} (details in the log)"))

    def _free_after_failure(self) -> None:
        from picotui.engine.hardware.memory import free_memory

        try:
            free_memory()
        except Exception:
            log.exception("freeing memory failed")

    def _out_of_memory(self, job_id: int, request: GenerationRequest, exc: BaseException,
                       retries: int) -> GenerationRequest | None:
        """Free memory (a half-loaded pipeline included) and step the memory plan up. If the plan did step
        up, the unfinished rest of the job is returned to run again at once (the user asked for an image,
        not for a lesson in memory modes); otherwise the job fails with what to do."""
        from picotui.engine.hardware.memory import clear_frames, free_memory, out_of_memory_message

        phase = self._engine.phase  # an out-of-memory error comes from a job, so the engine is there
        log.warning("job %d: out of GPU memory while %s: %s", job_id, phase, one_line(exc, 300))
        message = str(exc) if isinstance(exc, OutOfMemory) else out_of_memory_message(request.width, request.height)
        clear_frames(exc)  # the failed call's locals (activations, half-built models) must not outlive it
        hint, before = "", self._engine.min_mode
        try:
            hint = self._engine.on_out_of_memory()
        except Exception:
            log.exception("job %d: freeing memory after the out-of-memory error failed", job_id)
            free_memory()
        stepped = self._engine.min_mode != before
        rest = self._engine.remaining_request() if stepped and retries < MAX_OOM_RETRIES else None
        if rest is not None and not self._cancel.is_set():
            mode = self._engine.min_mode.replace("-", " ")
            self._emit(Notice(job_id, f"Out of GPU memory at {request.width}x{request.height}: trying again "
                                      f"with {mode}.", "warning"))
            return rest
        self._emit(Failed(job_id, OutOfMemory.kind, f"{message}{hint or ''}"))
        return None
