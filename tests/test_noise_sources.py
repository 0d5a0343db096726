"""A1111's noise sources (GPU, CPU, NV) and its per-image noise stream (variation seed, seed resize, ENSD),
held to independent references: torch's own generators, Random123's Philox known answers, a scalar
Philox + Box-Muller written here from the curand definition, A1111's slerp formula written out per column."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from noise_support import cuda_randn_element, philox_scalar, slerp_per_column

from picotui.engine.sampling.noise import DEFAULT_RNG, RNG_SOURCES, ImageNoise, PhiloxGenerator, make_generator

# torch.manual_seed(0); torch.randn(3, 4, device="cuda") (issue 12; A1111's rng_philox test vector)
CUDA_SEED0_3x4 = [[-0.92466259, -0.42534415, -2.6438457, 0.14518388],
                  [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
                  [-1.07454231, -0.36314407, -1.67105067, 2.26550497]]
# curand's Box-Muller on the GPU uses the hardware's fast sine (__sincosf, absolute error ~2^-21): no CPU
# computes it bit for bit, so the emulation meets CUDA to a few float32 ulps (A1111's NV does the same).
ULPS = 5e-7
LATENTS = [(4, 64, 64), (4, 96, 64), (4, 96, 96)]  # 512x512, 512x768, 768x768 pictures
CUDA = torch.cuda.is_available()

def test_default_is_a1111s_default():
    assert DEFAULT_RNG == "GPU" and RNG_SOURCES == ("GPU", "CPU", "NV")


@pytest.mark.parametrize("counter, key, expected", [  # Random123 kat_vectors, philox4x32 10 rounds
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_the_scalar_reference_is_philox4x32_10(counter, key, expected):
    assert tuple(philox_scalar(counter, key)) == expected


@pytest.mark.parametrize("source", ["NV", "GPU"])
def test_the_test_vector_on_the_cpu(source):
    # GPU off a CUDA device is the emulation: a seed gives the picture a default A1111 gives
    out = make_generator(source, 0, "cpu").randn((3, 4))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), CUDA_SEED0_3x4, rtol=0, atol=ULPS)


@pytest.mark.parametrize("shape", LATENTS)
def test_nv_equals_the_scalar_reference_first_and_later_draws(shape):
    seed = 3141592653 + shape[2]
    gen = PhiloxGenerator(seed)
    n = shape[0] * shape[1] * shape[2]
    picks = np.random.default_rng(0).choice(n, 40, replace=False).tolist() + [0, n - 1]
    for offset in range(3):  # each call moves the counter on by one, as torch's CUDA generator does here
        flat = gen.randn(shape).reshape(-1).numpy()
        expected = [cuda_randn_element(seed, offset, i) for i in picks]
        np.testing.assert_allclose(flat[picks], expected, rtol=0, atol=1e-6)
        assert abs(flat.mean()) < 0.05 and abs(flat.std() - 1) < 0.05


def test_large_tensors_follow_torchs_grid_stride_layout():
    # With fewer GPU threads than elements, thread t's Philox output gives 4 values (sin, cos, sin, cos)
    # for elements t, t+T, t+2T, t+3T; the next round moves the counter on by one.
    threads, n = 256, 256 * 5
    out = PhiloxGenerator(7, max_threads=threads).randn((n,)).numpy()
    for index in (0, 3, 255, 256, 300, 600, 900, 1023, 1024, 1279):
        lane, t = divmod(index, threads)
        round_, comp = divmod(lane, 4)
        words = philox_scalar((round_, 0, t, 0), (7, 0))
        x, y = (words[0], words[1]) if comp < 2 else (words[2], words[3])
        inv = float(np.float32(2.3283064e-10))
        inv_2pi = float(np.float32(2.3283064e-10 * 6.2831855))
        u, v = x * inv + inv / 2, y * inv_2pi + inv_2pi / 2
        expected = math.sqrt(-2 * math.log(u)) * (math.cos(v) if comp % 2 else math.sin(v))
        assert abs(out[index] - expected) < 1e-6, index


def test_cpu_is_torchs_cpu_generator_first_and_later_draws():
    stream = ImageNoise((1, 4, 12, 8), 77, source="CPU", device="cpu")
    reference = torch.Generator("cpu").manual_seed(77)
    assert torch.equal(stream.first(), torch.randn((4, 12, 8), generator=reference).unsqueeze(0))
    for _ in range(2):
        assert torch.equal(stream.next(), torch.randn((4, 12, 8), generator=reference).unsqueeze(0))


def test_nv_stream_first_and_later_draws_come_from_one_generator():
    stream = ImageNoise((4, 8, 8), 5, source="NV", device="cpu")
    first, second = stream.first(), stream.next()
    assert first.shape == second.shape == (1, 4, 8, 8)
    for i in (0, 17, 255):
        assert abs(first.reshape(-1)[i].item() - cuda_randn_element(5, 0, i)) < 1e-6
        assert abs(second.reshape(-1)[i].item() - cuda_randn_element(5, 1, i)) < 1e-6


def test_eta_noise_seed_delta_recreates_the_generator_after_the_first_draw():
    stream = ImageNoise((4, 8, 8), 100, source="CPU", device="cpu", eta_noise_seed_delta=31337)
    first, later = stream.first(), stream.next()
    assert torch.equal(first[0], torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(100)))
    assert torch.equal(later[0], torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(100 + 31337)))
    nv = ImageNoise((4, 8, 8), 100, source="NV", device="cpu", eta_noise_seed_delta=5)
    nv.first()
    assert abs(nv.next().reshape(-1)[3].item() - cuda_randn_element(105, 0, 3)) < 1e-6  # a new stream, offset 0


@pytest.mark.parametrize("strength", [0.1, 0.5, 0.9])
def test_variation_seed_is_a1111s_slerp_of_the_two_noises(strength):
    stream = ImageNoise((4, 16, 8), 1, source="CPU", device="cpu", subseed=2, subseed_strength=strength)
    seed_noise = torch.randn((4, 16, 8), generator=torch.Generator().manual_seed(1))
    variation_noise = torch.randn((4, 16, 8), generator=torch.Generator().manual_seed(2))
    # A1111: slerp(val=strength, low=the seed's noise, high=the variation seed's noise)
    expected = slerp_per_column(strength, seed_noise, variation_noise)
    np.testing.assert_allclose(stream.first()[0].numpy(), expected, atol=1e-5)
    # the per-image generator drew the seed's noise once: later draws continue from there
    reference = torch.Generator().manual_seed(1)
    torch.randn((4, 16, 8), generator=reference)
    assert torch.equal(stream.next()[0], torch.randn((4, 16, 8), generator=reference))


def test_strength_zero_leaves_the_seeds_noise():
    plain = ImageNoise((4, 8, 8), 9, source="NV", device="cpu").first()
    assert torch.equal(ImageNoise((4, 8, 8), 9, source="NV", device="cpu", subseed=3, subseed_strength=0).first(),
                       plain)


@pytest.mark.parametrize("resize, place", [
    # (from width, from height) -> (target rows, target cols, source rows, source cols) of the pasted block
    ((48, 80), (slice(0, 8), slice(1, 7), slice(1, 9), slice(0, 6))),  # taller: cropped; narrower: centred
    ((96, 32), (slice(2, 6), slice(0, 8), slice(0, 4), slice(2, 10))),
])
def test_seed_resize_places_the_seeds_noise_at_its_own_size_in_the_middle(resize, place):
    from_w, from_h = resize
    stream = ImageNoise((4, 8, 8), 42, source="CPU", device="cpu", seed_resize_from=resize)
    own = torch.randn((4, from_h // 8, from_w // 8), generator=torch.Generator().manual_seed(42))
    per_image = torch.Generator().manual_seed(42)
    expected = torch.randn((4, 8, 8), generator=per_image)
    ty, tx, sy, sx = place
    expected[:, ty, tx] = own[:, sy, sx]
    assert torch.equal(stream.first()[0], expected)
    assert torch.equal(stream.next()[0], torch.randn((4, 8, 8), generator=per_image))


def test_seed_resize_to_the_same_size_changes_nothing():
    assert torch.equal(ImageNoise((4, 8, 8), 3, source="CPU", device="cpu", seed_resize_from=(64, 64)).first(),
                       ImageNoise((4, 8, 8), 3, source="CPU", device="cpu").first())


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("shape", LATENTS)
def test_gpu_is_torchs_cuda_generator_and_nv_equals_it(shape):
    stream = ImageNoise(shape, 123456789, source="GPU", device="cuda")
    reference = torch.Generator("cuda").manual_seed(123456789)
    nv = PhiloxGenerator(123456789)
    first = stream.first()
    assert torch.equal(first[0], torch.randn(shape, generator=reference, device="cuda"))
    torch.testing.assert_close(nv.randn(shape), first[0].cpu(), rtol=0, atol=10 * ULPS)
    for _ in range(2):
        later = stream.next()[0]
        assert torch.equal(later, torch.randn(shape, generator=reference, device="cuda"))
        torch.testing.assert_close(nv.randn(shape), later.cpu(), rtol=0, atol=10 * ULPS)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_torch_cuda_test_vector_and_large_tensor_layout():
    torch.manual_seed(0)
    np.testing.assert_allclose(torch.randn(3, 4, device="cuda").cpu().numpy(), CUDA_SEED0_3x4, rtol=0, atol=ULPS)
    props = torch.cuda.get_device_properties(0)
    threads = props.multi_processor_count * props.max_threads_per_multi_processor
    shape = (4, threads // 4 * 3 + 100)  # more elements than threads: torch's grid-stride layout
    reference = torch.Generator("cuda").manual_seed(11)
    emulation = PhiloxGenerator(11, max_threads=threads)
    for _ in range(2):
        torch.testing.assert_close(emulation.randn(shape), torch.randn(shape, generator=reference, device="cuda").cpu(),
                                   rtol=0, atol=10 * ULPS)
