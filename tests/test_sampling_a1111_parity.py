"""picotui's pictures equal A1111's: every k-diffusion sampler x schedule type x noise source, ENSD, variation
seeds, a batch of 2, held to k-diffusion's own sampler functions driven as A1111 drives them
(tests/kdiffusion_reference.py). Mean absolute difference <= 1/255 on an unweighted prompt.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from generation_support import encode, tiny_pipe  # noqa: F401  (fixtures)
from kdiffusion_reference import A1111_TABLE, NoiseStream, a1111_image, load_kdiffusion

from picotui.engine.sampling.generate import decode, denoise
from picotui.engine.sampling.noise import ImageNoise, make_generator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

PROMPT, NEGATIVE = "a corgi on a wooden floor", "blurry"  # no weights: A1111's emphasis is not involved
SIZE, STEPS, CFG = 32, 4, 6.0
SCHEDULES = ("Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform")
K_SAMPLERS = list(A1111_TABLE)


@pytest.fixture(scope="module")
def conds(encode):
    return encode(PROMPT, NEGATIVE)


def ours(pipe, conds, *, sampler, schedule, seed, source="CPU", steps=STEPS, **noise_kw):
    cond, uncond = conds
    noise = ImageNoise((1, 4, SIZE // 8, SIZE // 8), seed, source=source, device="cpu", **noise_kw)
    latents = denoise(pipe, cond, uncond, sampler=sampler, schedule=schedule, steps=steps, cfg=CFG, width=SIZE,
                      height=SIZE, seed=seed, noise=noise, preview=False)
    return np.asarray(decode(pipe, latents)).astype(np.int16)


def reference(pipe, conds, *, sampler, schedule, seeds, steps=STEPS, **kw):
    cond, uncond = conds
    return a1111_image(pipe.unet, pipe.vae, cond, uncond, sampler=sampler, schedule=schedule, steps=steps, cfg=CFG,
                       seeds=seeds, width=SIZE, height=SIZE, **kw).astype(np.int16)


def assert_same_picture(a, b):
    assert a.shape == b.shape
    assert np.abs(a - b).mean() <= 1.0, np.abs(a - b).mean()
    assert a.std() > 3  # a real picture of noise, not a flat image that would match anything


def nv_stream(seed):
    return make_generator("NV", seed, "cpu")


def test_the_reference_is_k_diffusions_own_code():
    sampling, external = load_kdiffusion()
    assert sampling.__file__.endswith("k_diffusion/sampling.py")
    assert external.__file__.endswith("k_diffusion/external.py")


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("sampler", K_SAMPLERS)
def test_every_sampler_and_schedule_type_matches_a1111_cpu_rng(tiny_pipe, conds, sampler, schedule):
    expected = reference(tiny_pipe, conds, sampler=sampler, schedule=schedule, seeds=[11])[0]
    assert_same_picture(ours(tiny_pipe, conds, sampler=sampler, schedule=schedule, seed=11), expected)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("sampler", K_SAMPLERS)
def test_every_sampler_and_schedule_type_matches_a1111_with_the_nv_source(tiny_pipe, conds, sampler, schedule):
    stream = NoiseStream((4, SIZE // 8, SIZE // 8), [5], randn=nv_stream)
    expected = reference(tiny_pipe, conds, sampler=sampler, schedule=schedule, seeds=[5], stream=stream, steps=3)[0]
    assert_same_picture(ours(tiny_pipe, conds, sampler=sampler, schedule=schedule, seed=5, source="NV", steps=3),
                        expected)


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2S a", "DPM2 a", "DPM++ 2M SDE"])
def test_eta_noise_seed_delta(tiny_pipe, conds, sampler):
    expected = reference(tiny_pipe, conds, sampler=sampler, schedule="Karras", seeds=[7], ensd=31337)[0]
    got = ours(tiny_pipe, conds, sampler=sampler, schedule="Karras", seed=7, eta_noise_seed_delta=31337)
    assert_same_picture(got, expected)
    if sampler != "DPM++ 2M SDE":  # ancestral noise follows ENSD; SDE noise comes from the seed's tree
        without = ours(tiny_pipe, conds, sampler=sampler, schedule="Karras", seed=7)
        assert np.abs(got - without).mean() > 1


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ SDE"])
def test_variation_seed(tiny_pipe, conds, sampler):
    expected = reference(tiny_pipe, conds, sampler=sampler, schedule="Automatic", seeds=[3], subseeds=[99],
                         subseed_strength=0.3)[0]
    got = ours(tiny_pipe, conds, sampler=sampler, schedule="Automatic", seed=3, subseed=99, subseed_strength=0.3)
    assert_same_picture(got, expected)


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M SDE", "DPM++ 3M SDE", "DPM2"])
def test_a_batch_of_two_gives_each_image_its_own_seed(tiny_pipe, conds, sampler):
    # A1111 samples both images in one batch (seeds s, s+1; one Brownian tree per seed); picotui one by one
    batch = reference(tiny_pipe, conds, sampler=sampler, schedule="Automatic", seeds=[20, 21])
    for image, seed in zip(batch, (20, 21)):
        assert_same_picture(ours(tiny_pipe, conds, sampler=sampler, schedule="Automatic", seed=seed), image)
    assert np.abs(batch[0].astype(int) - batch[1]).mean() > 1


@pytest.mark.parametrize("sampler", ["DPM++ SDE", "DPM++ 2M SDE Heun"])
def test_sde_samplers_draw_their_brownian_noise_as_on_an_nvidia_gpu(tiny_pipe, conds, sampler):
    # A1111 runs on CUDA, so torchsde draws the tree's normals with CUDA's generator whatever the RNG setting;
    # picotui does the same off CUDA (the emulation). With the device's own generator: A1111 on a CPU.
    from picotui.engine.sampling import denoiser

    gpu = reference(tiny_pipe, conds, sampler=sampler, schedule="Karras", seeds=[8])[0]
    cpu = reference(tiny_pipe, conds, sampler=sampler, schedule="Karras", seeds=[8], on_gpu=False)[0]
    assert np.abs(gpu - cpu).mean() > 1  # the two A1111s differ: the test can tell them apart
    assert_same_picture(ours(tiny_pipe, conds, sampler=sampler, schedule="Karras", seed=8), gpu)
    plain = denoiser.BrownianNoise.__init__.__kwdefaults__
    try:
        plain["cuda_normals"] = False
        assert_same_picture(ours(tiny_pipe, conds, sampler=sampler, schedule="Karras", seed=8), cpu)
    finally:
        plain["cuda_normals"] = True


def test_restart_with_its_restart_segments_differs_from_plain_heun(tiny_pipe, conds):
    # from 20 steps A1111's Restart adds segments that jump back up with fresh noise: not Heun any more
    heun = ours(tiny_pipe, conds, sampler="Heun", schedule="Karras", seed=4, steps=20)
    restart = ours(tiny_pipe, conds, sampler="Restart", schedule="Karras", seed=4, steps=20)
    assert np.abs(heun - restart).mean() > 1


def test_the_picture_is_truncated_to_8_bits_as_a1111_does(tiny_pipe):
    from picotui.engine.sampling.generate import to_8bit

    decoded = torch.tensor([-1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 1.5]).reshape(1, 1, 1, 7).expand(1, 3, 1, 7)
    pixels = np.asarray(to_8bit(decoded))[0, :, 0]
    # (x+1)/2 clamped, *255, truncated: 0.5 -> 191.25 -> 191 (rounding would give 191 too; 0.999 -> 254.87 -> 254)
    assert pixels.tolist() == [0, 0, 127, 191, 254, 255, 255]
