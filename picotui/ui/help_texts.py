"""F1 help for every control: what it does and how to choose a value, written for someone learning
Stable Diffusion 1.5. Keys are the control ids (or the `help-*` class of repeated controls)."""

from __future__ import annotations

HELP: dict[str, tuple[str, str]] = {
    "prompt": ("Prompt", """\
Describe the picture you want, as a list of things the model should see: the subject first, then
details, setting, lighting and style. Example: "corgi, sitting on a wooden floor, warm lighting".

The model reads at most 75 tokens at a time (a token is a word or part of a word). The counter shows
tokens used out of the current chunk; past 75 the prompt is split into chunks that are encoded
separately and joined, so later words still count but tend to matter a little less.

Weights in A1111's style work: (word:1.3) makes a word stronger, (word:0.7) weaker, ((word)) is 1.21.
"BREAK" starts a new chunk on purpose. <lora:name:0.8> applies a LoRA from models/loras.
Change one thing at a time and compare: that is how you learn what your checkpoint responds to."""),
    "negative": ("Negative prompt", """\
Things you do NOT want in the image. The model steers away from them at every step.

Common starters: "low quality, blurry, watermark, text, deformed hands". A few well-chosen words work
better than a huge list. If you see gibberish letters, add "text, letters, watermark"; bad hands are a
known SD1.5 weakness that a negative prompt eases but never fully fixes.

Same syntax as the prompt: weights like (blurry:1.2) and embeddings (a file name from
models/embeddings, e.g. a "bad hands" embedding) both work here."""),
    "checkpoint": ("Checkpoint", """\
The main model: it decides what the model knows and the overall style (photo, anime, painting...).
Different checkpoints give very different results from the same prompt.

Download SD1.5 checkpoints (.safetensors) from civitai or Hugging Face and put them in
models/checkpoints, then press ctrl+o (model browser) or pick one here. SDXL and SD2 files do not work
and are greyed out in the browser with the reason.

"demo" is a tiny built-in model with random weights: it only paints noise, but it lets you try every
control without a download. Switching checkpoints takes a few seconds the first time; the loaded one
is reused."""),
    "vae": ("VAE", """\
The VAE turns the model's small internal picture (the latent) into real pixels at the end.

"checkpoint's own" uses the VAE baked into the checkpoint, which is right most of the time. If colours
look washed out or grey, or the image comes out black, try a separate VAE such as vae-ft-mse-840000
(put it in models/vae). A checkpoint's download page usually says which VAE it expects.
Swapping the VAE does not reload the checkpoint."""),
    "lora-name": ("LoRA", """\
A LoRA is a small add-on file that nudges the checkpoint toward a style or teaches it a new thing
(a character, an outfit, a film look). Completely optional.

Pick a file from models/loras. Many LoRAs need a trigger word in the prompt: check its download page.
LoRAs are trained for a particular checkpoint family; on another checkpoint the effect may be weak or
odd. ctrl+n adds another row; the row's "remove" button (or the Delete key here) removes it."""),
    "lora-weight": ("LoRA weight", """\
How strongly the LoRA is applied, from 0 (off) to 2.

Start at 0.8. If nothing changes, check the trigger word, then go up to 1.0–1.2. If the image turns
strange, over-sharpened or melted, go down. With several LoRAs, lower each a little: their effects
add up."""),
    "lora-remove": ("Remove LoRA", "Removes this LoRA row from the job. ctrl+n adds a new row."),
    "lora-add": ("Add LoRA", "Adds a LoRA row (also ctrl+n, or pick a LoRA in the model browser with ctrl+o)."),
    "sampler": ("Sampler", """\
The method that removes noise step by step. Different samplers reach slightly different pictures
from the same seed and need different step counts.

Good starting points (sampler + schedule type):
  DPM++ 2M + Karras – clean and quick, great at 20–30 steps.
  DPM++ 2M SDE + Karras – a little more detail and texture, 20–30 steps.
  Euler a – soft and varied; the image keeps changing as steps grow.
  Euler – simple and predictable.
Samplers ending in "a" or "SDE" add fresh noise each step, so more steps change the picture rather
than just refining it. Heun and DPM2 call the model twice per step: twice as slow."""),
    "schedule-type": ("Schedule type", """\
Which noise levels the sampler visits, from pure noise down to the picture (A1111's "Schedule type").
"Automatic" picks the sampler's usual one as A1111 does (Karras for DPM++ 2M, Exponential for DPM++ 2M
SDE, Uniform for Euler); Karras spends more steps on fine detail. DDIM, PLMS and UniPC ignore it."""),
    "steps": ("Steps", """\
How many denoising steps to run (1–150). More steps take proportionally longer.

20–30 is the sweet spot for most samplers; 24 is a good default. Below about 12 images look unfinished;
above about 40 you rarely see a difference. For quick experiments use fewer steps, then raise them
for the keeper. Keep the same seed when comparing."""),
    "cfg": ("CFG scale", """\
How strictly the model follows your prompt (1–30). Start at 7.

Lower (4–6): freer, softer, more natural, may ignore parts of the prompt. Higher (8–12): follows the
prompt harder, more contrast, but colours and details can get harsh or "burnt". Above 15 images
usually break down. Some checkpoints say on their page what they like."""),
    "width": ("Width", """\
Image width in pixels: 256–1024, a multiple of 8.

SD1.5 was trained at 512×512, so stay near 512 on at least one side. Much larger sizes tend to repeat
the subject (two heads, twin corgis) and need more memory: 768×768 may not fit a 4 GB card. Use the
presets for common shapes; 512×768 for portraits, 768×512 for landscapes."""),
    "height": ("Height", """\
Image height in pixels: 256–1024, a multiple of 8.

512 is what SD1.5 knows best. Tall images (512×768) suit people and portraits, wide ones (768×512)
landscapes. If you get an out-of-memory error, make the image smaller."""),
    "size-preset": ("Size presets", """\
Sets width and height together to a shape SD1.5 handles well: 512×512 square, 512×768 portrait,
768×512 landscape, 768×768 large square (needs more memory)."""),
    "seed": ("Seed", """\
The number that decides the starting noise. The same seed with the same settings gives (almost) the
same image, so the seed is how you reproduce a picture or compare settings fairly.

When the seed is unlocked, every generation picks a new random seed and shows it here. Lock it
(ctrl+l) to keep the seed while you change the prompt, steps or CFG, and see only the effect of your
change. With a batch, image 2 uses seed+1, image 3 seed+2, and so on."""),
    "seed-lock": ("Lock seed", """\
Locked: every generation uses the seed in the field, so you can change one other setting and compare.
Unlocked: each generation draws a new random seed. ctrl+l toggles it from anywhere."""),
    "seed-random": ("New random seed", "Puts a fresh random seed in the field (ctrl+r from anywhere)."),
    "clip-skip": ("Clip skip", """\
Which layer of the text encoder the prompt is read from (1–4). 1 uses the last layer (standard SD1.5).

Many anime-style checkpoints were trained with clip skip 2 and look better with it; their download
page usually says so. For photographic checkpoints leave it at 1. Values above 2 are rarely useful."""),
    "tome": ("Token merging ratio", """\
A1111's "Token merging ratio" (ToMe): merge this share of similar image tokens before each
full-resolution self-attention, so every step does less work. 0 is off; 0.3–0.5 is a common trade
(faster at large sizes, slightly softer detail); A1111 allows up to 0.9. The same ratio gives the same
picture as in A1111, and PNGs record it."""),
    "ngms": ("NGMS (negative guidance minimum sigma)", """\
A1111's "Negative Guidance minimum sigma": below this noise level, every other step skips the negative
prompt's pass, saving up to a quarter of the UNet work late in sampling. 0 is off; A1111 users try 1–3.
PNGs record it as "NGMS"."""),
    "batch": ("Batch count", """\
How many images to make in a row from one press of ctrl+g (1–100). Each one uses the next seed
(seed, seed+1, ...), so any of them can be reproduced later. Good for exploring a prompt: make 4,
keep the best seed, lock it, then refine."""),
    "rng": ("RNG (noise source)", """\
Where the starting noise comes from, as AUTOMATIC1111 names it: GPU (A1111's default, which picotui
computes exactly as an NVIDIA card does, with or without one), CPU, or NV (A1111's name for that same
calculation done on the CPU). Keep GPU and a seed gives the same picture on any computer and in a
default A1111; pick CPU or NV when a recipe says "RNG: CPU" or "RNG: NV"."""),
    "variation-seed": ("Variation seed", """\
A second seed whose noise is blended into the seed's noise, by the variation strength. Small strengths
give the same picture with small changes: a way to explore around an image you like.

Empty means a random variation seed for each job. With a batch, image 2 uses variation seed+1 and keeps
the same seed (as A1111 does). F5 varies the current picture: same seed, new variation seed."""),
    "variation-strength": ("Variation strength", """\
How much of the variation seed's noise is mixed in (0–1): 0 is off (the seed alone), 1 is the
variation seed alone. 0.05–0.2 changes details, 0.3–0.5 the composition.

A1111 mixes the two noises along a sphere (slerp), so the noise stays like fresh noise at every
strength; picotui does the same, so A1111 recipes with "Variation seed strength" reproduce."""),
    "seed-resize": ("Seed resize from", """\
Make the seed's noise as if the picture were this size (WIDTHxHEIGHT, e.g. 512x512), placed in the
middle of (or cropped to) the real size. Empty is off.

Use it to keep a composition you found at one size when you change the width or height: type the old
size here, keep the seed. A1111 calls it "Resize seed from width/height"."""),
    "ensd": ("ENSD (eta noise seed delta)", """\
A number added to the seed for the noise that samplers like Euler a add at each step (not the starting
noise). 0 is off; many anime recipes say "ENSD: 31337".

It changes only the samplers that add noise each step (ancestral samplers, marked "a"). Type the
recipe's value to reproduce it; otherwise leave it at 0."""),
    "generate": ("Generate", """\
Starts a job with the current settings (ctrl+g from anywhere). Pressing it again while an image is
being made queues another job with the settings at that moment. escape cancels the running job.
Every image is saved as a PNG under outputs/ with its full recipe inside."""),
    "image": ("Image", """\
The current image: the live preview while the model works (a quick, blurry approximation of each
step), then the final picture. Over SSH or in tmux the picture may be drawn with coloured block
characters; see `--graphics` and README (tmux needs `set -g allow-passthrough on`)."""),
    "history-list": ("History", """\
Every image of this session and earlier ones found in outputs/, newest first. Move with the arrow
keys; the panel shows its settings and what differs from your current form. Enter restores the
settings (including the seed, which gets locked) into the form."""),
    "browser-table": ("Model browser", """\
Your model files, by kind. Enter uses the highlighted file: a checkpoint or VAE is set in the form, a
LoRA is added as a row, an embedding's name is added to the prompt. Greyed rows cannot be used; the
reason is shown. r rescans the folders after you add files."""),
    "open-path": ("Open an image's recipe", """\
Type, paste or drop onto the terminal the path of an image made by picotui or AUTOMATIC1111 (PNG, JPEG,
WebP) and press Enter: its prompt, seed and settings are loaded into the form. Tab completes the path
(pressed again after more letters, it goes further); the matches are listed under the field. Down arrow
moves to the browser of the outputs folder: Enter on an image opens it. Quoted paths, file:// URLs and
backslash-escaped spaces are understood. Settings picotui does not know are listed in a notification."""),
    # ---- the second pass (widgets/second_pass.py): img2img and hires fix ----
    "second-pass": ("Second pass", """\
A second denoising pass over a picture: img2img (start from a source image instead of pure noise) or
hires fix (make the picture at the form's size, upscale it, then denoise it again at the larger size).
Both are off until you choose a source image or tick "Hires fix". F9 opens and folds this section from
anywhere; its title says what the second pass will do even while it is folded."""),
    "source-name": ("Source image (img2img)", """\
The picture img2img starts from: its composition and colours are kept, and the denoising strength says
how much of it is redrawn to match your prompt. F8 uses the image on screen, ctrl+t then i a history
image, "file…" any PNG, JPEG or WebP. The recipe records the file's name and hash, never the picture."""),
    "source-choose": ("Choose a source image", """\
Opens the file dialog (the same as "Open image recipe…"): pick a PNG, JPEG or WebP to start img2img from.
Tab completes a path; the outputs folder is browsable; a pasted or dropped path works."""),
    "source-clear": ("Clear the source image", """\
Forgets the source image: the next job is text to image again (hires fix can then be switched on)."""),
    "resize-mode": ("Resize mode", """\
How the source image is fitted to the form's width × height when the shapes differ (A1111's four):
  Just resize – stretch it to the size; a different aspect ratio squashes the picture.
  Crop and resize – scale it to cover the whole size and cut off what sticks out.
  Resize and fill – scale it to fit inside and fill the empty bands from the picture's own edge colours.
  Just resize (latent upscale) – encode the picture at its own size, then stretch the latent to the size.
For hires fix it does not matter: the hires pass upscales the first pass's whole picture."""),
    "denoising": ("Denoising strength", """\
How much of the picture is redrawn, from 0 to 1. Low values (0.2–0.4) keep the picture and change
texture and small details; high values (0.6–0.8) keep only the rough composition and colours, and 1
ignores the picture almost entirely.

img2img starts at 0.75 and, as in A1111, runs only about that share of the steps (24 at 0.5: 13 run).
Hires fix starts at 0.7 (picotui switches to it when you tick "Hires fix" and have not typed a value);
for hires, 0.3–0.5 adds detail without changing the picture, above 0.6 duplicated faces creep back."""),
    "hires": ("Hires fix", """\
Make the picture at the form's size (SD1.5 is happiest near 512), upscale it, then denoise it again at
the larger size. You get 1024-pixel detail without the duplicated heads and bodies SD1.5 draws when
asked for a large picture directly. It costs the second pass's steps at the larger size (4× the pixels
at 2×) and needs more memory. Only for text to image: clear the source image to use it."""),
    "hires-scale": ("Upscale by", """\
How much the hires pass enlarges the first picture: 2 turns 512×512 into 1024×1024 (1–4; A1111's
"Upscale by"). Ignored when "Resize to" has a size."""),
    "hires-resize": ("Resize to", """\
A size for the hires picture instead of a factor, WIDTHxHEIGHT (A1111's "Resize width/height to").
One side 0 follows the other through the first picture's shape (1024x0 from 512×768 gives 1024×1536);
both set with another shape: the upscale covers the size and the middle is cut out. Empty: upscale by
the factor."""),
    "hires-upscaler": ("Upscaler", """\
How the first picture is enlarged before the hires pass.
  Latent (and its variants) – stretch the model's small internal picture (the latent) directly: fast,
    no memory for pixels, but it blurs, so it needs a denoising strength of 0.5 or more to look sharp.
  Lanczos / Nearest – decode to pixels and resize them (None is Lanczos too, as in A1111).
  Model upscalers (ESRGAN, Real-ESRGAN, SwinIR, DAT, HAT... in models/upscalers) – a network that adds
    real detail: sharp at 0.3–0.4 denoising, but slower and heavier.
The model browser (ctrl+o) lists your upscalers with their architecture and scale."""),
    "hires-steps": ("Hires steps", """\
How many steps the hires pass runs. 0 (the default) uses the form's steps. Unlike img2img, A1111 runs
exactly this many steps whatever the denoising strength, so 10–15 is often enough for the hires pass."""),
    "hires-sampler": ("Hires sampler", """\
The sampler for the hires pass; "same as first pass" uses the form's. Recipes record it only when it
differs (A1111's "Hires sampler")."""),
    "hires-schedule": ("Hires schedule type", """\
The schedule type for the hires pass; "same as first pass" uses the form's (A1111's "Hires schedule
type")."""),
    "hires-prompt": ("Hires prompt", """\
A different prompt for the hires pass (A1111's "Hires prompt"), e.g. detail words the first pass does
not need. Empty uses the form's prompt. Same syntax as the prompt."""),
    "hires-negative": ("Hires negative prompt", """\
A different negative prompt for the hires pass. Empty uses the form's negative prompt."""),
    # ---- "Upscale this image" (ctrl+s; screens/upscale.py) ----
    "upscale-upscaler": ("Upscaler (Extras)", """\
What enlarges the picture. Lanczos (no model, always there) is smooth and honest: it adds no detail.
An upscaler model from models/upscalers (ESRGAN, Real-ESRGAN, SwinIR, DAT, HAT...) redraws edges and
texture as it enlarges: sharper, slower, and each model has its own look (some are made for photos, some
for drawings). Nearest keeps hard pixels. Nothing is denoised: for new detail use hires fix (F9)."""),
    "upscale-scale": ("Upscale by", """\
How many times larger, 1–8 (A1111's Extras "Scale by"). A 4× model asked for 2× runs once and is then
resized down; asked for 8× it runs twice. Big pictures are done in tiles, so memory stays small."""),
    "upscale-go": ("Upscale", """\
Starts the upscale as a job (escape cancels it like any job). The result is saved in outputs/extras/
with the source's recipe and A1111's "Postprocess" keys, and shown here."""),
}

def reflow(body: str) -> str:
    """Join each paragraph's lines (the source wraps at ~100 columns; the dialog wraps to its width).
    Lines indented by two spaces are list items and stay on their own line."""
    out = []
    for paragraph in body.split("\n\n"):
        lines = []
        for line in paragraph.splitlines():
            if lines and not line.startswith("  ") and not lines[-1].startswith("  "):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
        out.append("\n".join(lines))
    return "\n\n".join(out)


# Help for a widget without its own id: the first class that names a topic.
def topic_for(widget) -> str | None:
    """The help topic of `widget` or its nearest ancestor that has one."""
    node = widget
    while node is not None:
        for cls in getattr(node, "classes", ()):
            if cls.startswith("help-") and cls[5:] in HELP:
                return cls[5:]
        if getattr(node, "id", None) in HELP:
            return node.id
        node = node.parent
    return None
