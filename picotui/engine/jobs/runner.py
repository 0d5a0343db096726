"""A whole job: resolve the request's models, load or reuse the pipeline, fit it to memory, then for each
image of the batch denoise, decode and save, sending events all along. The maths of one image is in
`generate`; this module is about everything around it that outlives one image.

Lives in the worker thread: torch is imported when a JobRunner is built.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from picotui.engine.errors import JobCancelled, one_line
from picotui.engine.events import EngineStatus, Finished, Loading, Notice, Step
from picotui.engine.hardware import memory
from picotui.engine.hardware.token_merging import set_token_merging
from picotui.engine.hardware.unet_count import UNetEvaluations
from picotui.engine.jobs import saving, second_pass
from picotui.engine.jobs.worker import MAX_OOM_RETRIES
from picotui.engine.sampling import generate

log = logging.getLogger("picotui.jobs")


def cost_text(denoise_s: float, steps: int, evaluations: int) -> str:
    """What an image cost: "0.38 s/step, 48 UNet evaluations (2 a step)"."""
    per_step = evaluations / steps if steps else 0
    return (f"{denoise_s / max(steps, 1):.2f} s/step, {evaluations} UNet evaluations "
            f"({per_step:g} a step)")



def image_noise(image_request, device, size: tuple[int, int] | None = None):
    """A1111's noise stream for a one-image request (its seed, variation seed, noise settings) at the latent
    shape of `size` (width, height; default the request's): the hires pass draws a new stream at its own."""
    from picotui.engine.sampling.noise import ImageNoise

    r = image_request
    width, height = size or (r.width, r.height)
    shape = (4, height // 8, width // 8)
    return ImageNoise(shape, r.seed, source=r.rng, device=device,
                      subseed=r.variation_seed if r.variation_strength else None,
                      subseed_strength=r.variation_strength, seed_resize_from=r.seed_resize_from,
                      eta_noise_seed_delta=r.eta_noise_seed_delta)


class JobRunner:
    """Everything a job needs that outlives it: device, library, loaded pipeline, prompt cache, memory plan.

    Built in the worker thread (it imports torch). `emit` sends events to the worker's event queue.
    """

    def __init__(self, paths, device_request: str, allow_pickle: bool, memory_mode: str | None, emit,
                 speed: str | None = None, preview: bool = True):
        import torch  # noqa: F401  (the expensive import happens here, in the worker thread)

        from picotui.engine.models.loading import quiet_libraries

        emit(Loading(0, "importing diffusers", 0.5))
        quiet_libraries()  # first: importing the pipeline prints transformers' notices (torchvision...) to stderr
        # ~3 s of imports paid now, while the user types, rather than on the first ctrl+g.
        from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel  # noqa: F401
        from transformers import CLIPTextModel  # noqa: F401

        from picotui.engine.hardware.memory import choose_device, memory_mode_setting, use_device
        from picotui.engine.hardware.speed import UNetGraphs, check_speed_setting
        from picotui.engine.models.library import Library
        from picotui.engine.models.loading import ModelManager

        self.paths = paths
        self.emit = emit
        self.preview = preview  # a GPU->CPU copy every step: only when something draws it
        self.job_id = 0
        self.choice = choose_device(device_request)
        use_device(self.choice)  # this thread runs every CUDA call: cuda:N must be its current device
        if self.choice.notice:
            emit(Notice(0, self.choice.notice, "warning"))
        self.memory_mode = memory_mode or memory_mode_setting()
        self.library = Library(paths.models, paths.cache, allow_pickle=allow_pickle)  # .pt embeddings: same opt-in
        self._is_cancelled: Callable[[], bool] = lambda: False
        self.manager = ModelManager(self.library, self.choice.device, self.choice.dtype, allow_pickle=allow_pickle,
                                    on_stage=self._on_stage)
        self.prompts = generate.PromptCache()
        self.plan = None
        self.speed_setting = check_speed_setting(speed)
        self.speed = None  # speed.SpeedPath chosen for the current job
        self.graphs = UNetGraphs()
        self.min_mode: str | None = None  # after an out-of-memory error: never go back below this
        self._encoder = None
        self._encoder_for = None
        self._said_demo = False
        self.last_cost = ""  # the last image's cost: s/step and UNet evaluations (status line, F3)
        self._taesd = None  # (file key, TaesdPreview or True when the file is unusable) for the live preview
        self._taesd_said = None  # the last "cannot use the TAESD file" notice, said once
        self.phase = "idle"  # what the running job is doing: loading, encoding, denoising, upscaling, decoding, saving
        self.plan_size = memory.JobSize(512, 512)  # the sizes the memory plan was chosen for
        self._upscalers = None  # upscaling.upscalers.Upscalers, built for the first model-upscaled hires pass
        self.job_request = None  # the running job's request, with its concrete seed
        self.images_done = 0  # of that request's batch
        log.info("engine ready on %s (%s)", self.choice.name, self.choice.dtype)

    # ---- status ---------------------------------------------------------------------------------
    def status(self, job_id: int, state: str) -> EngineStatus:
        from picotui.engine.hardware.memory import vram_info

        info = vram_info(self.choice.device)
        gib = 1024**3
        cuda = info is not None
        plan, speed = self.plan, self.speed
        detail = {"memory_reason": plan.reason if plan else "", "capability": self.choice.capability,
                  "speed_reason": speed.reason if speed else ("" if cuda else "CPU in fp32: no GPU in use"),
                  "cost": self.last_cost}
        return EngineStatus(
            job_id, state, device=self.choice.name, dtype=str(self.choice.dtype).removeprefix("torch."),
            vram_used_gib=round(info[2] / gib, 2) if cuda else None,
            vram_total_gib=round(info[1] / gib, 2) if cuda else None,
            checkpoint=self.manager.checkpoint.name if self.manager.checkpoint else None,
            memory_mode=plan.label if plan else ("cpu" if not cuda else ""),
            speed_path=(speed.label if speed else "") if cuda else "eager (CPU)", detail=detail)

    # ---- one job --------------------------------------------------------------------------------
    def run_job(self, job_id: int, request, is_cancelled: Callable[[], bool], *, done_before: int = 0) -> None:
        """Make and save the request's images, emitting events. `done_before`: images of this job finished by
        an earlier attempt (a retry after out-of-memory), so progress keeps counting from there."""
        from picotui.engine.prompting.prompts import extract_prompt_tags

        self.job_id = job_id
        self._is_cancelled = is_cancelled
        self.phase = "starting"
        t0 = time.perf_counter()
        request, idle_hires = second_pass.without_idle_hires(request.with_seed())
        if idle_hires:
            self.warn(idle_hires)
        second_pass.check_strength(request)  # before anything loads
        source = second_pass.open_source(request.init_image, self.warn) if request.init_image else None
        if source is not None:  # the recipe names the exact source file, never embeds it
            if request.init_image_hash and request.init_image_hash != source.hash:  # a recipe run again
                self.warn(f"{source.path.name} is not the picture this recipe was made from (hash "
                          f"{request.init_image_hash}, now {source.hash}): the result will differ.")
            request = replace(request, init_image_hash=source.hash)
        seeds = request.seeds()
        self.job_request, self.images_done = request, 0
        log.info("job %d: %s", job_id, request.to_json())
        tags = extract_prompt_tags(request.prompt, request.negative_prompt)  # negative tags: removed, not applied
        prompt, negative, tag_loras = tags.prompt, tags.negative, tags.loras
        hires_prompt, hires_negative, hires_notices = second_pass.hires_prompts(request, prompt, negative, tag_loras)
        for message in (*tags.notices, *hires_notices):  # e.g. <hypernet:...>, which picotui cannot apply
            self.emit(Notice(job_id, message, "warning"))
        self.library.scan()  # files dropped in since the last job are found
        if request.hires and second_pass.model_upscaler(request.hires_upscaler):
            self.upscalers().resolve(request.hires_upscaler)  # a missing model fails now, not after the first pass
        checkpoint = self.library.resolve(request.checkpoint, "checkpoint")
        vae = self.library.resolve(request.vae, "vae") if request.vae else None
        # The panel's LoRAs and the prompt's <lora:...> tags together; the same file twice adds up (A1111).
        loras = [(self.library.resolve(spec.name, "lora"), spec.weight) for spec in (*request.loras, *tag_loras)]
        self.library.start_hashing(files=[checkpoint, vae, *(mf for mf, _w in loras)])  # ready by the first save
        if self.manager.checkpoint is None or Path(self.manager.checkpoint.path) != Path(checkpoint.path):
            self.graphs.clear()  # the old UNet's graphs hold VRAM the new checkpoint needs
            self._encoder = self._encoder_for = None  # and the cached encoder holds the old text encoder
            self.prompts.clear()
            self.emit(self.status(job_id, "loading"))
        self.phase = "loading"
        pipe = self.manager.pipeline_for(checkpoint, vae, loras)
        self._apply_plans(pipe, second_pass.job_size(request, source))
        t_load = time.perf_counter() - t0
        self._maybe_demo_notice(job_id, checkpoint)
        if is_cancelled():
            raise JobCancelled()
        self.emit(self.status(job_id, "generating"))

        self.phase = "encoding"
        t1 = time.perf_counter()
        cond, uncond = self._encode(pipe, prompt, negative, request.clip_skip, loras)
        hires_conds = self._encode(pipe, hires_prompt, hires_negative, request.clip_skip, loras) \
            if request.hires else None
        init_latents = None
        if source is not None:  # encoded once for the whole batch, as A1111 encodes its init images
            self.phase = "encoding image"
            init_latents = second_pass.source_latents(pipe, request, source, self.warn)
        t_encode = time.perf_counter() - t1
        hashes = None
        texts = {prompt, negative, *((hires_prompt, hires_negative) if request.hires else ())}  # for TI hashes
        passes = 2 if request.hires else 1
        for index, seed in enumerate(seeds):
            if is_cancelled():
                raise JobCancelled()
            image_request = request.image_request(index)
            t2 = time.perf_counter()
            self.phase = "denoising"
            set_token_merging(pipe.unet, request.token_merging_ratio)  # A1111's "Token merging ratio" (also hr's)
            where = (done_before + index, done_before + len(seeds))
            with UNetEvaluations(pipe.unet) as counted:
                latents, steps_run = self.denoise_pass(
                    pipe, cond, uncond, image_request, counted=counted, image=where,
                    label="first pass" if passes == 2 else "", count=passes, init_latents=init_latents)
                t3 = time.perf_counter()
                if request.hires:
                    hires = second_pass.HiresPass(self, pipe, image_request, hires_conds, MAX_OOM_RETRIES)
                    image = hires.run(latents, counted, where)
                    steps_run += hires.steps
            denoise_s = t3 - t2
            if request.hires:  # denoise: both passes; the upscale (and its VAE encode) on a line of its own
                denoise_s += hires.timings["hires"]
                pass_timings = {"upscale": hires.timings["upscale"], "decode": hires.timings["decode"]}
            else:
                self.phase = "decoding"
                image = self.decode(pipe, latents)
                pass_timings = {"decode": time.perf_counter() - t3}
            t4 = time.perf_counter()
            if is_cancelled():  # cancelled while decoding: no new PNG for an image the user stopped
                raise JobCancelled()
            self.phase = "saving"

            def parameters(r=image_request) -> str:
                nonlocal hashes
                if hashes is None:  # once per job, when the first picture is saved
                    hashes = saving.recipe_hashes(self.library, self._encoder, texts, checkpoint, vae,
                                                  zip((*request.loras, *tag_loras), loras), self.warn)
                return saving.recipe_text(r, checkpoint, vae, hashes)

            path, text, save_error = saving.save_image(image, self.paths.outputs, image_request, parameters,
                                                       is_cancelled, f"job {job_id} image {index}")
            t5 = time.perf_counter()
            timings = {"load": t_load if index == 0 else 0.0, "encode": t_encode if index == 0 else 0.0,
                       "denoise": denoise_s, **pass_timings, "save": t5 - t4,
                       "total": (t5 - t0) if index == 0 else (t5 - t2)}
            log.info("job %d image %d/%d seed %d: %s -> %s", job_id, index + 1, len(seeds), seed,
                     {k: round(v, 3) for k, v in timings.items()}, path or save_error)
            self.images_done += 1
            self.last_cost = cost_text(denoise_s, steps_run, counted.evaluations)
            self.emit(Finished(job_id, image, path, image_request, text, timings, done_before + index,
                               done_before + len(seeds),
                               save_error, unet_evaluations=counted.evaluations))

    # ---- passes ---------------------------------------------------------------------------------
    def denoise_pass(self, pipe, cond, uncond, r, *, counted, image: tuple[int, int], label: str = "",
                     number: int = 1, count: int = 1, sampler: str | None = None, schedule: str | None = None,
                     steps: int | None = None, init_latents=None, fixed_steps: bool = False):
        """One denoising pass of image request `r`: (latents, steps it ran). Its Step events carry the pass
        (`label`, `number` of `count`) and their own index/total/ETA; `image` is (index, batch count) for them.
        With `init_latents` (img2img, the hires pass) it runs A1111's img2img sampling at their size, with a
        noise stream drawn at that shape."""
        job_id = self.job_id
        size = (r.width, r.height)
        extra = {}
        if init_latents is not None:
            size = (init_latents.shape[-1] * 8, init_latents.shape[-2] * 8)
            extra = dict(init_latents=init_latents, denoising_strength=r.denoising_strength, fixed_steps=fixed_steps)
        ran = [0]

        def on_step(report):
            ran[0] = report.total
            self.emit(Step(job_id, report.index, report.total, report.it_per_s, report.eta_s, report.preview,
                           image[0], image[1], counted.evaluations, label, number, count))

        latents = generate.denoise(
            pipe, cond, uncond, sampler=sampler or r.sampler, schedule=schedule or r.schedule_type,
            steps=steps or r.steps, cfg=r.cfg, ngms=r.ngms, width=size[0], height=size[1], seed=r.seed,
            is_cancelled=self._is_cancelled, noise=image_noise(r, self.choice.device, size),
            graphs=self.graphs if self.speed.name == "cuda-graphs" else None,
            graph_state=(self._graph_state(), r.token_merging_ratio),  # merging changes the graph
            on_notice=self.warn, preview=self._preview(job_id), on_step=on_step, **extra)
        return latents, ran[0]

    def decode(self, pipe, latents):
        return generate.decode(pipe, latents, on_notice=self.warn)

    def warn(self, message: str) -> None:
        self.emit(Notice(self.job_id, message, "warning"))

    def is_cancelled(self) -> bool:
        return self._is_cancelled()

    def upscalers(self):
        """The upscaler models (upscaling.upscalers.Upscalers), built once, on this runner's device."""
        if self._upscalers is None:
            from picotui.engine.upscaling.upscalers import Upscalers

            self._upscalers = Upscalers(self.library, self.choice.device, self.choice.dtype,
                                        self.library.allow_pickle)
        return self._upscalers

    def retry_pass_after_oom(self, exc: BaseException, where: str, size: tuple[int, int]) -> bool:
        """Out of GPU memory in one pass of an image (the hires pass): free memory, step the memory plan up as
        on_out_of_memory does for a whole job, lay the pipeline out again and say so. False when the plan cannot
        step up (fixed by the user, or already the leanest): the error goes on to the worker."""
        from picotui.engine.hardware.memory import clear_frames

        log.warning("job %d: out of GPU memory in the %s: %s", self.job_id, where, one_line(exc, 300))
        clear_frames(exc)
        before = self.min_mode
        self.on_out_of_memory()
        if self.min_mode == before or self.manager.pipe is None:
            return False
        self._apply_plans(self.manager.pipe, self.plan_size)
        self.emit(second_pass.retry_notice(self.job_id, where, size, self.min_mode))
        return True

    # ---- pieces ---------------------------------------------------------------------------------
    def _preview(self, job_id: int):
        """What draws the live preview: a TAESD decoder from models/vae-approx when there is one (loaded once,
        again when the file changes), else True (the colour approximation), or False when nothing draws it."""
        from picotui.engine.models.taesd import TaesdPreview, find_taesd, load_taesd

        if not self.preview:
            return False
        path, why = find_taesd(self.paths.models, self.library.allow_pickle)
        if why and why != self._taesd_said:
            self._taesd_said = why
            self.emit(Notice(job_id, why, "warning"))
        if path is None:
            self._taesd = None
            return True
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, str(self.choice.device))
        if self._taesd is None or self._taesd[0] != key:
            try:
                self._taesd = (key, TaesdPreview(load_taesd(path, self.choice.device, self.choice.dtype,
                                                            self.library.allow_pickle)))
            except Exception as exc:  # a bad preview file must not cost the image: fall back, say why once
                log.warning("TAESD preview %s unusable: %s", path, exc)
                self._taesd = (key, True)
                self.emit(Notice(job_id, f"{one_line(exc, 160)} The preview uses the colour approximation.",
                                 "warning"))
        return self._taesd[1]

    def _apply_plans(self, pipe, size: memory.JobSize) -> None:
        """The memory plan for the biggest sizes the job touches, then the speed path that plan allows."""
        from picotui.engine.hardware.memory import apply_plan, choose_memory_plan, same_layout, vram_info
        from picotui.engine.hardware.speed import choose_speed_path

        info = vram_info(self.choice.device)
        free, total = (info[0], info[1]) if info else (None, None)
        width, height = size.width, size.height
        plan = choose_memory_plan(free, total, width, height, self.choice.capability, override=self.memory_mode,
                                  at_least=self.min_mode, encode=size.encode, upscaler=size.upscaler)
        self.plan_size = size
        job = self.job_request
        if plan.mode != "cpu" and job is not None and (size.encode or (width, height) != (job.width, job.height)):
            plan = replace(plan, reason=f"{plan.reason}; for {second_pass.size_words(size)}")  # F3 says why
        if plan.mode != "cpu":
            if not same_layout(pipe, plan):
                self.emit(Loading(self.job_id, f"placing models on {self.choice.device} ({plan.label})", 0.9))
            apply_plan(pipe, plan, self.choice.device)
        self.plan = plan
        speed = choose_speed_path(self.choice.capability, plan, width, height, free_vram_bytes=free,
                                  total_vram_bytes=total, setting=self.speed_setting, broken=self.graphs.broken)
        if speed.name != "cuda-graphs":
            self.graphs.clear()
        if speed != self.speed:
            log.info("speed path: %s (%s)", speed.label, speed.reason)
        self.speed = speed

    def _graph_state(self):
        """What a captured UNet graph depends on besides input shapes: the loaded weights and LoRA scales."""
        plan = self.plan
        return (self.manager.load_count, self.manager.lora_state, plan.attention_slicing if plan else False)

    def _on_stage(self, stage: str, fraction: float | None) -> None:
        """A loading stage: a Loading event, and the cancel check between stages (a cancelled load stops
        before its next stage; the manager is left with nothing loaded, never half a pipeline)."""
        self.emit(Loading(self.job_id, stage, fraction))
        if (fraction is None or fraction < 1.0) and self._is_cancelled():
            raise JobCancelled()

    def on_out_of_memory(self) -> str:
        """After an out-of-memory error: free what the job held and step the memory policy up.

        A failure while loading (checkpoint, VAE, LoRA, or placing them on the GPU) may leave a half-built
        pipeline, so everything is unloaded and the next job loads afresh. Returns one sentence for the
        user about what the next job does differently ("" when nothing changes), true also when the
        memory mode is fixed by the user's setting (the policy does not step up then).
        """
        from picotui.engine.hardware.memory import next_mode

        self.graphs.clear()  # their memory pools are the first thing to give back
        if self._upscalers is not None:
            self._upscalers.release()  # an upscaler model is loaded again when next needed
        if self.phase == "loading":
            self._encoder = self._encoder_for = None  # it holds the text encoder
            self.prompts.clear()
            self.manager.unload()
        memory.free_memory()
        if self.plan is None or self.plan.mode == "cpu":
            return ""
        nxt = next_mode(self.plan, *self.plan_size.largest())
        fixed = self.memory_mode not in (None, "", "auto")
        if fixed:
            instead = f"set it to {nxt} or auto" if nxt else "nothing leaner exists"
            return (f" The memory mode is fixed to {self.memory_mode} by your settings (--memory-mode, memory_mode "
                    f"in the config file, or PICOTUI_MEMORY_MODE), so the next job uses it again: {instead}.")
        if not nxt:
            return " picotui already uses its leanest memory mode."
        self.min_mode = nxt
        return f" The next job uses at least {nxt.replace('-', ' ')} to need less memory."

    def remaining_request(self):
        """The part of the current job not finished yet (its seeds continue where it stopped), or None."""
        request = self.job_request
        if request is None or self.images_done >= request.batch_count:
            return None
        return request.remaining(self.images_done)

    def _encode(self, pipe, prompt: str, negative: str, clip_skip: int, loras):
        from picotui.engine.prompting.conditioning import PromptEncoder
        from picotui.engine.prompting.embeddings import skipped_embedding_notices

        files = self.library.files("embedding")
        embeddings = {Path(mf.path).stem: Path(mf.path) for mf in files if mf.usable}
        # A1111 silently reads an unusable embedding's name as words; say so, and why (e.g. .pt without opt-in).
        for message in skipped_embedding_notices([prompt, negative], files):
            self.emit(Notice(self.job_id, message, "warning"))
        owner = (id(pipe), id(pipe.text_encoder), self.manager.load_count, tuple(sorted(embeddings.items())))
        if self._encoder is None or self._encoder_for != owner:
            self._encoder = PromptEncoder(pipe.tokenizer, pipe.text_encoder, embeddings,
                                          allow_pickle=self.library.allow_pickle)
            self._encoder_for = owner
            self.prompts.clear()
        # The LoRAs as loaded (which load put each in, and its weight), not their names or sizes: a file
        # replaced in place keeps both, and its text-encoder weights are new.
        plan = self.plan
        key = (owner, self.manager.lora_state, prompt, negative, clip_skip)
        return self.prompts.get(key, lambda: generate.encode_prompts(
            pipe, self._encoder, prompt, negative, clip_skip,
            text_encoder_offload=bool(plan and plan.text_encoder_offload), device=self.choice.device))

    def _maybe_demo_notice(self, job_id: int, checkpoint) -> None:
        from picotui.engine.models.demo import DEMO_FILE, DEMO_NOTE

        if not self._said_demo and Path(checkpoint.path).name == DEMO_FILE:
            self._said_demo = True
            self.emit(Notice(job_id, DEMO_NOTE, "information"))
