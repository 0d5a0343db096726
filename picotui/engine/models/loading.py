"""Single-file SD1.x checkpoints -> a diffusers StableDiffusionPipeline, offline, kept loaded between jobs.

Why not `from_single_file`: it wants a config matching the file's sizes and may consult the hub. Here
the architecture is read from the file's own tensor shapes (so the tiny demo model and a real 2 GB
checkpoint take the same path), the configs come from assets/sd15 with those sizes substituted, and
the LDM -> diffusers key mapping is `ldm_layout` (cross-checked against diffusers' converter in tests).

Lives in the worker thread: torch, diffusers and transformers are imported here, never by the UI.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

from picotui.engine.errors import ModelError, is_out_of_memory
from picotui.engine.hardware.memory import free_memory, layout_changed, release_component
from picotui.engine.models import ldm_layout as L
from picotui.engine.models.hashing import stat_key
from picotui.engine.models.weights import TensorSource, load_safetensors, read_header, utf8_name

# Nothing here may touch the network; set before diffusers/transformers (and so huggingface_hub) load.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

log = logging.getLogger(__name__)

Stage = Callable[[str, float], None]



def _adapter_name(path: Path, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", Path(path).stem) or "lora"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name



def check_checkpoint(mf) -> None:
    """Refuse, from the library's header sniff, anything that is not an SD1.x checkpoint."""
    path = Path(mf.path)
    if not path.exists():
        raise ModelError(f"Checkpoint {mf.name} is missing ({path}): rescan the models folder or pick another.")
    if mf.kind == "lora":
        raise ModelError(f"{mf.name} is a LoRA, not a checkpoint: put it in models/loras and add it as a LoRA.")
    if mf.kind == "vae":
        raise ModelError(f"{mf.name} is a VAE, not a checkpoint: put it in models/vae and pick it as the VAE.")
    if mf.kind == "embedding":
        raise ModelError(f"{mf.name} is a textual-inversion embedding: put it in models/embeddings and use its "
                         f"name in the prompt.")
    pickle = mf.is_pickle
    if mf.family == "SD1.x inpainting":
        raise ModelError(f"{mf.name} is an SD1.x inpainting checkpoint; picotui generates from text only: "
                         f"pick a regular SD1.5 checkpoint.")
    if mf.family in ("SDXL", "SD2.x"):
        raise ModelError(f"{mf.name} is an {mf.family} checkpoint; picotui runs SD1.x (SD1.5) checkpoints only.")
    if not pickle and not mf.usable:
        read_header(path)  # unreadable or truncated: this raises the "download it again" message
    if not pickle and (mf.kind != "checkpoint" or mf.family != "SD1.x" or not mf.usable):
        raise ModelError(mf.reason or f"{mf.name} is not an SD1.x checkpoint ({mf.kind}, {mf.family}): "
                                      f"pick an SD1.5 checkpoint.")


def _check_shapes(name: str, shapes: dict) -> None:
    """The same refusals for what the header sniff cannot see (pickles): decided from tensor names/shapes."""
    if any(k.startswith("conditioner.embedders.") for k in shapes):
        raise ModelError(f"{name} is an SDXL checkpoint; picotui runs SD1.x (SD1.5) checkpoints only.")
    if any(k.startswith("cond_stage_model.model.") for k in shapes):
        raise ModelError(f"{name} is an SD2.x checkpoint; picotui runs SD1.x (SD1.5) checkpoints only.")
    if not any(k.startswith(L.UNET_PREFIX) for k in shapes):
        raise ModelError(f"{name} has no UNet weights: it is not a full SD1.x checkpoint.")
    if shapes.get(L.UNET_PREFIX + "input_blocks.0.0.weight", (0, 4))[1] != 4:
        raise ModelError(f"{name} is an inpainting (or other special) checkpoint; pick a regular SD1.5 checkpoint.")


class ModelManager:
    """Owns the one loaded pipeline. `pipeline_for` reuses it; VAE and LoRA changes never reload it."""

    def __init__(self, library, device, dtype, *, allow_pickle: bool = False,
                 on_stage: Stage = lambda stage, fraction: None):
        self.library = library
        self.device = device
        self.dtype = dtype
        self.allow_pickle = allow_pickle
        self.on_stage = on_stage
        self.pipe = None
        self.checkpoint = None  # ModelFile of the loaded checkpoint
        self._ckpt_key: tuple | None = None
        self._own_vae = None  # the checkpoint's VAE, kept (off-device) while an override is active
        self._vae_key: tuple | None = None  # None = the checkpoint's own
        self.vae_file = None
        self._adapters: dict[tuple, str] = {}  # LoRA file identity -> peft adapter name
        # LoRA file identity -> which load (a session-wide count) put its weights in: an adapter name is
        # reused after a delete (a file replaced in place, or another folder's file of the same name), so
        # only this says the weights are new.
        self._lora_loads: dict[tuple, int] = {}
        self._lora_count = 0
        self.load_count = 0  # how many times a checkpoint was read (tests: "did not reload")
        # (adapter, load, weight) applied now: what a captured UNet graph and a cached prompt depend on
        self.lora_state: tuple = ()
        quiet_libraries()

    # ---- public --------------------------------------------------------------------------------
    def pipeline_for(self, checkpoint, vae=None, loras=()):
        """The pipeline for this checkpoint + VAE (None = the checkpoint's own) + [(LoRA, weight)]."""
        try:
            key = stat_key(checkpoint.path)
        except FileNotFoundError:
            raise ModelError(f"Checkpoint {checkpoint.name} is missing ({checkpoint.path}): rescan the models "
                             f"folder or pick another.") from None
        if self.pipe is None or key != self._ckpt_key:
            self.unload()
            self.pipe = self._load_checkpoint(checkpoint)
            self.checkpoint, self._ckpt_key = checkpoint, key
            self.load_count += 1
        self._apply_vae(vae)
        self._apply_loras(list(loras))
        return self.pipe

    def unload(self) -> None:
        """Drop everything (a checkpoint switch, or freeing memory after an out-of-memory error)."""
        self.pipe = self.checkpoint = self._ckpt_key = self._own_vae = self._vae_key = self.vae_file = None
        self._adapters.clear()
        self._lora_loads.clear()
        self.lora_state = ()
        free_memory()

    # ---- checkpoint ----------------------------------------------------------------------------
    def _load_checkpoint(self, mf):
        check_checkpoint(mf)
        self.on_stage("reading checkpoint", 0.0)
        src = TensorSource(mf.path, self.dtype, allow_pickle=self.allow_pickle)
        _check_shapes(mf.name, src.shapes)
        try:
            self.on_stage("building UNet", 0.1)
            unet = self._build_unet(src)
            self.on_stage("building text encoder", 0.55)
            text_encoder = self._build_text_encoder(src)
            self.on_stage("building VAE", 0.7)
            vae = build_vae(src, L.VAE_PREFIX, mf.name)
        except (KeyError, ValueError, IndexError, StopIteration) as exc:
            raise ModelError(f"{mf.name} does not look like an SD1.x checkpoint ({exc}); pick an SD1.5 "
                             f"checkpoint.") from None
        finally:
            src.close()
        self.on_stage("building pipeline", 0.8)
        vae._picotui_source = ("checkpoint", *stat_key(mf.path))  # its fp16 verdict is remembered by file
        pipe = _assemble(unet, vae, text_encoder)
        # Still on the CPU: the memory plan (jobs.JobRunner) moves to the GPU what it decides should live
        # there, so an offloading plan never needs the whole model on the card at once.
        pipe.to(dtype=self.dtype)
        self.on_stage("ready", 1.0)
        return pipe

    def _build_unet(self, src):
        from diffusers import UNet2DConditionModel

        cfg = L.infer_unet_config(src.shapes, _base("unet"))
        return _fill(UNet2DConditionModel.from_config, cfg, src,
                     lambda k: L.unet_key_to_ldm(k, cfg), L.UNET_PREFIX, "UNet")

    def _build_text_encoder(self, src):
        from transformers import CLIPTextConfig, CLIPTextModel

        # Most files say cond_stage_model.transformer.text_model.*; some older ones drop "text_model.".
        prefix = L.TEXT_PREFIX + "text_model."
        if prefix + "embeddings.token_embedding.weight" not in src.shapes:
            prefix = L.TEXT_PREFIX
        cfg = L.infer_text_config(src.shapes, _base("text_encoder"), prefix)
        cfg.pop("architectures", None)
        return _fill(lambda c: CLIPTextModel(CLIPTextConfig(**c)), cfg, src,
                     lambda k: k.removeprefix("text_model."), prefix, "text encoder")

    # ---- VAE -----------------------------------------------------------------------------------
    def _apply_vae(self, vae_file) -> None:
        key = stat_key(vae_file.path) if vae_file is not None and Path(vae_file.path).exists() else None
        if vae_file is not None and key is None:
            raise ModelError(f"VAE {vae_file.name} is missing ({vae_file.path}): rescan or pick another VAE.")
        if key == self._vae_key:
            return
        if vae_file is None:  # back to the checkpoint's own
            release_component(self.pipe.vae)
            self.pipe.vae = self._placed(self._own_vae)
            self._own_vae, self._vae_key, self.vae_file = None, None, None
            return
        if vae_file.kind not in ("vae", "unknown") and not vae_file.is_pickle:
            raise ModelError(f"{vae_file.name} is a {vae_file.kind}, not a VAE: pick a file from models/vae.")
        self.on_stage("loading VAE", 0.0)
        src = TensorSource(vae_file.path, self.dtype, allow_pickle=self.allow_pickle)
        try:
            prefix = L.VAE_PREFIX if any(k.startswith(L.VAE_PREFIX) for k in src.shapes) else ""
            new = build_vae(src, prefix, vae_file.name)
        except (KeyError, ValueError, IndexError) as exc:
            raise ModelError(f"{vae_file.name} is not an SD1.x VAE ({exc}); pick another VAE.") from None
        finally:
            src.close()
        new._picotui_source = ("vae", *key)
        release_component(self.pipe.vae)  # off the GPU (and out of any offload hooks)
        if self._own_vae is None:
            self._own_vae = self.pipe.vae  # kept for "checkpoint's own"
        self.pipe.vae = self._placed(new)
        self._vae_key, self.vae_file = key, vae_file
        self.on_stage("ready", 1.0)

    def _placed(self, vae):
        """A VAE joining the pipeline: on the device if nothing else decides; when a memory plan laid the
        pipeline out, it stays on the CPU and the plan is applied again before the next image."""
        if getattr(self.pipe, "_picotui_plan", None) is None:
            return vae.to(self.device)
        layout_changed(self.pipe)
        return vae

    # ---- LoRA ----------------------------------------------------------------------------------
    def _apply_loras(self, loras: list) -> None:
        wanted: dict[tuple, float] = {}
        files = {}
        for mf, weight in loras:
            if not Path(mf.path).exists():
                raise ModelError(f"LoRA {mf.name} is missing ({mf.path}): rescan or remove it from the prompt.")
            if mf.kind not in ("lora", "unknown") and not mf.is_pickle:
                raise ModelError(f"{mf.name} is a {mf.kind}, not a LoRA: pick a file from models/loras.")
            if mf.family in ("SDXL", "SD2.x"):
                raise ModelError(f"{mf.name} is an {mf.family} LoRA; it does not fit SD1.x checkpoints.")
            k = stat_key(mf.path)
            wanted[k] = wanted.get(k, 0.0) + float(weight)  # the same LoRA twice adds up, as in A1111
            files[k] = mf
        stale = [name for k, name in self._adapters.items() if k not in wanted]
        if stale:  # unused adapters cost memory and time on every step: remove, don't just disable
            self.pipe.delete_adapters(stale)
            self._adapters = {k: n for k, n in self._adapters.items() if k in wanted}
            self._lora_loads = {k: n for k, n in self._lora_loads.items() if k in wanted}
        for k, mf in files.items():
            if k not in self._adapters:
                name = _adapter_name(mf.path, set(self._adapters.values()))
                self.on_stage(f"loading LoRA {mf.name}", 0.0)
                self._load_lora(mf, name)
                self._adapters[k] = name
                self._lora_count += 1
                self._lora_loads[k] = self._lora_count
        if wanted:
            self.pipe.set_adapters([self._adapters[k] for k in wanted], list(wanted.values()))
        self.lora_state = tuple(sorted((self._adapters[k], self._lora_loads[k], w) for k, w in wanted.items()))

    def _load_lora(self, mf, name: str) -> None:
        path = Path(mf.path)
        if path.suffix.lower() != ".safetensors":
            from picotui.engine.models.weights import load_pickle

            source = load_pickle(path, self.allow_pickle)
        else:
            read_header(path)  # replaced since the scan, cut short, damaged: "download it again", not "not SD1.5"
            source = str(path) if utf8_name(path) else load_safetensors(path)
        try:
            with warnings.catch_warnings():
                # peft warns whenever a second adapter joins a model; several LoRAs is exactly the point.
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                self.pipe.load_lora_weights(source, adapter_name=name)
        except ModelError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("LoRA %s failed to load", path, exc_info=True)
            try:  # it may have reached the UNet before failing on the text encoder: leave no half adapter
                self.pipe.delete_adapters([name])
            except Exception:  # nothing was injected: nothing to remove
                pass
            if is_out_of_memory(exc):  # the GPU is full, the file may be fine: the worker reports it as such
                raise
            raise ModelError(f"{mf.name} could not be applied as an SD1.x LoRA ({first[:120]}); check that it "
                             f"was made for SD1.5.") from None


# ---- shared builders -------------------------------------------------------------------------------

def quiet_libraries() -> None:
    """transformers/diffusers print progress bars and load reports to stderr, which would scribble over
    the TUI; their warnings about LoRA key matching are noise here (we check results ourselves)."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    for lib in (dlog, tlog):
        lib.set_verbosity_error()
        lib.disable_progress_bar()

def _base(component: str) -> dict:
    from picotui.engine.models.demo import base_config

    return base_config(component)


def _fill(make, cfg: dict, src, key_fn, prefix: str, what: str):
    """Build a model from `cfg` with empty parameters, then fill every one from the file (or refuse)."""
    from accelerate import init_empty_weights

    with init_empty_weights():  # parameters on "meta": no RAM spent on random init that is thrown away
        model = make(cfg)
    expected = list(model.state_dict().keys())
    state, missing = L.gather(src, expected, key_fn, prefix)
    if missing:
        raise ModelError(f"{Path(src.path).name} is missing {len(missing)} {what} weights (e.g. {missing[0]}); "
                         f"the file is incomplete or not an SD1.x checkpoint.")
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        if is_out_of_memory(exc):
            raise
        first = str(exc).strip().splitlines()[-1].strip()
        raise ModelError(f"{Path(src.path).name}: {what} weights do not fit the SD1.x layout ({first[:120]}).") from None
    return model.eval()


def build_vae(src, prefix: str, name: str):
    """An AutoencoderKL from an LDM-layout VAE (in a checkpoint or standalone) or a diffusers-keyed one."""
    from diffusers import AutoencoderKL

    base = _base("vae")
    if any(k.startswith("encoder.down_blocks.") for k in src.shapes):
        cfg = L.infer_vae_config_diffusers(src.shapes, base)
        return _fill(AutoencoderKL.from_config, cfg, src, lambda k: k, "", "VAE")
    if not any(k.startswith(prefix + "encoder.down.") for k in src.shapes):
        raise ModelError(f"{name} has no VAE weights; pick a VAE file (LDM or diffusers layout).")
    cfg = L.infer_vae_config(src.shapes, base, prefix)
    return _fill(AutoencoderKL.from_config, cfg, src, lambda k: L.vae_key_to_ldm(k, cfg), prefix, "VAE")


def _assemble(unet, vae, text_encoder):
    """The pipeline with the bundled tokenizer and scheduler; no safety checker (none ships offline)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    from picotui.paths import assets_dir

    root = assets_dir() / "sd15"
    tokenizer = CLIPTokenizer.from_pretrained(str(root / "tokenizer"), local_files_only=True)
    scheduler = PNDMScheduler.from_pretrained(str(root / "scheduler"), local_files_only=True)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)  # progress goes out as events, not to stderr
    return pipe
