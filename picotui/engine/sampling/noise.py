"""Noise as A1111 draws it: the three sources (GPU, CPU, NV) and one image's noise stream.

A1111 (modules/rng.py, modules/rng_philox.py) names three noise sources:
- GPU: torch's CUDA generator (A1111's default; a recipe without an `RNG:` key means GPU).
- CPU: torch's CPU generator.
- NV: a CPU imitation of torch's CUDA `randn` (Philox4x32-10 + Box-Muller).
On a CUDA device GPU is torch's CUDA generator itself; on any other device it is the Philox emulation,
so a seed gives the same picture on the user's CPU, their GPU and in a default A1111.

Imports torch and numpy inside functions (the engine loads them in the worker thread only).
"""

from __future__ import annotations

RNG_SOURCES = ("GPU", "CPU", "NV")  # A1111's names
DEFAULT_RNG = "GPU"

# Philox4x32-10 constants (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), as curand uses them.
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_MASK32 = 0xFFFFFFFF


def _philox4x32_10(counter, key):
    """Philox4x32-10 over columns: counter (4, n) and key (2, n) uint64 arrays holding 32-bit words."""
    import numpy as np

    c0, c1, c2, c3 = (counter[i].copy() for i in range(4))
    k0, k1 = key[0].copy(), key[1].copy()
    m0, m1 = np.uint64(_PHILOX_M[0]), np.uint64(_PHILOX_M[1])
    w0, w1 = np.uint64(_PHILOX_W[0]), np.uint64(_PHILOX_W[1])
    mask, shift = np.uint64(_MASK32), np.uint64(32)
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + w0) & mask, (k1 + w1) & mask
        p0 = c0 * m0  # products of two 32-bit words fit in 64 bits
        p1 = c2 * m1
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ k0, p1 & mask, (p0 >> shift) ^ c3 ^ k1, p0 & mask
    return c0, c1, c2, c3


# curand's Box-Muller constants are float32 numbers; A1111's NV multiplies them in float64.
def _box_muller(x, y, *, cosine):
    import numpy as np

    inv = np.float64(np.float32(2.3283064e-10))
    inv_2pi = np.float64(np.float32(2.3283064e-10 * 6.2831855))
    u = x.astype(np.float64) * inv + inv / 2
    v = y.astype(np.float64) * inv_2pi + inv_2pi / 2
    s = np.sqrt(-2.0 * np.log(u))
    return (s * (np.cos(v) if cosine else np.sin(v))).astype(np.float32)


class PhiloxGenerator:
    """torch's CUDA `randn` on the CPU, vectorised (A1111's `NV` source, rng_philox.Generator).

    Element i of a call gets Philox counter (offset, 0, i, 0) under the 64-bit seed as key, and the sine
    half of Box-Muller on the first two output words; the offset advances by one per call. That is
    exactly what torch's CUDA kernel does while the tensor has no more elements than the GPU runs threads
    (every SD latent on every current GPU). With `max_threads` (the GPU's SMs x threads per SM) a larger
    tensor is laid out as torch lays it out there: each thread's Philox output yields four values
    (sin, cos, sin, cos) for the elements a grid-stride apart, and the offset advances per round.
    The Philox words are exact; the GPU takes the sine with its fast hardware approximation (__sincosf),
    which no CPU reproduces bit for bit, so values agree to a few float32 ulps (< 1e-6), far below what
    changes an 8-bit pixel. Box-Muller runs in float64 as A1111's rng_philox does.
    """

    def __init__(self, seed: int, *, max_threads: int | None = None):
        self.seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        self.offset = 0
        self.max_threads = max_threads

    def randn(self, shape):
        import numpy as np
        import torch

        n = 1
        for size in shape:
            n *= int(size)
        index = np.arange(n, dtype=np.uint64)
        threads = n if self.max_threads is None or n <= self.max_threads else (self.max_threads // 256) * 256
        threads = max(threads, 1)
        lane = index // np.uint64(threads)  # which of a thread's values (0 while n <= threads)
        rounds = lane // np.uint64(4)
        component = (lane % np.uint64(4)).astype(np.int64)
        counter = np.zeros((4, n), dtype=np.uint64)
        counter[0] = (np.uint64(self.offset) + rounds) & np.uint64(_MASK32)
        counter[2] = index % np.uint64(threads)
        key = np.empty((2, n), dtype=np.uint64)
        key[0] = self.seed & _MASK32
        key[1] = self.seed >> 32
        words = _philox4x32_10(counter, key)
        out = np.empty(n, dtype=np.float32)
        for comp in range(4):  # four vectorised passes, one per Box-Muller half
            where = component == comp
            if where.any():
                x, y = (words[0], words[1]) if comp < 2 else (words[2], words[3])
                out[where] = _box_muller(x[where], y[where], cosine=bool(comp % 2))
        self.offset += max(1, -(-n // (4 * threads)))
        return torch.from_numpy(out.reshape(tuple(int(s) for s in shape)))


class _TorchSource:
    """torch's own generator (CPU, or CUDA on a CUDA device)."""

    def __init__(self, seed: int, device):
        import torch

        self.device = device
        self.generator = torch.Generator(device).manual_seed(int(seed))

    def randn(self, shape):
        import torch

        return torch.randn(tuple(shape), generator=self.generator, device=self.device, dtype=torch.float32)


def _is_cuda(device) -> bool:
    import torch

    return torch.device(device).type == "cuda"


def make_generator(source: str, seed: int, device):
    """A generator for `source` seeded with `seed`; `.randn(shape)` gives float32 (on CPU or `device`)."""
    if source not in RNG_SOURCES:
        raise ValueError(f"Unknown noise source {source!r}: choose one of {', '.join(RNG_SOURCES)}.")
    if source == "CPU":
        return _TorchSource(seed, "cpu")
    if source == "GPU" and _is_cuda(device):
        return _TorchSource(seed, device)
    return PhiloxGenerator(seed)


def slerp(val: float, low, high):
    """A1111's slerp (modules/rng.py): per (channel, column) over the rows of [C, H, W] noise; `val` is the
    weight of `high` (the variation noise). Near-parallel noises fall back to A1111's linear mix."""
    import torch

    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


class ImageNoise:
    """A1111's noise stream for one image (modules/rng.py ImageRNG with one seed).

    `first()` is the starting noise (variation seed mixed in, seed resize applied); `next()` gives every
    later draw of the same generator, which the ancestral samplers use. With an eta noise seed delta the
    generator is re-created from seed + ENSD after the first draw, as A1111 does.
    `shape` is (4, h, w) or (1, 4, h, w) in latent units; `seed_resize_from` is (width, height) in pixels.
    """

    def __init__(self, shape, seed, *, source, device, subseed=None, subseed_strength=0.0,
                 seed_resize_from=None, eta_noise_seed_delta=0):
        shape = tuple(int(s) for s in shape)
        self.shape = shape[1:] if len(shape) == 4 else shape
        if len(self.shape) != 3:
            raise ValueError(f"Noise shape must be (C, H, W) or (1, C, H, W), not {shape}.")
        self.seed = int(seed)
        self.source = source
        self.device = device
        self.subseed = None if subseed is None else int(subseed)
        self.subseed_strength = float(subseed_strength or 0.0)
        self.seed_resize_from = tuple(seed_resize_from) if seed_resize_from else None
        self.eta_noise_seed_delta = int(eta_noise_seed_delta or 0)
        self.generator = make_generator(source, self.seed, device)
        self.is_first = True

    def _fresh(self, seed, shape):
        """A1111's `randn(seed, shape)`: the first draw of a generator seeded just for it."""
        return make_generator(self.source, seed, self.device).randn(shape)

    def first(self):
        import torch

        self.is_first = False
        c, h, w = self.shape
        noise_shape = self.shape
        if self.seed_resize_from is not None:
            from_w, from_h = self.seed_resize_from
            if from_w > 0 and from_h > 0:
                noise_shape = (c, int(from_h) // 8, int(from_w) // 8)
        subnoise = None
        if self.subseed is not None and self.subseed_strength != 0:
            subnoise = self._fresh(self.subseed, noise_shape).to(self.device)
        if noise_shape != self.shape:
            noise = self._fresh(self.seed, noise_shape).to(self.device)
        else:
            noise = self.generator.randn(self.shape).to(self.device)
        if subnoise is not None:
            noise = slerp(self.subseed_strength, noise, subnoise)
        if noise_shape != self.shape:
            # The seed's noise at its own size, centred on (or cropped to) this image's noise.
            x = self.generator.randn(self.shape).to(self.device)
            dx = (w - noise_shape[2]) // 2
            dy = (h - noise_shape[1]) // 2
            cw = noise_shape[2] if dx >= 0 else noise_shape[2] + 2 * dx
            ch = noise_shape[1] if dy >= 0 else noise_shape[1] + 2 * dy
            tx, ty = max(dx, 0), max(dy, 0)
            sx, sy = max(-dx, 0), max(-dy, 0)
            x[:, ty:ty + ch, tx:tx + cw] = noise[:, sy:sy + ch, sx:sx + cw]
            noise = x
        if self.eta_noise_seed_delta:
            self.generator = make_generator(self.source, self.seed + self.eta_noise_seed_delta, self.device)
        return noise.to(device=self.device, dtype=torch.float32).unsqueeze(0)

    @property
    def torch_generator(self):
        """The stream's torch.Generator (CPU, or GPU on CUDA), for code that draws through torch itself;
        None for the Philox emulation."""
        return getattr(self.generator, "generator", None)

    def next(self):
        if self.is_first:
            return self.first()
        return self.generator.randn(self.shape).to(self.device).unsqueeze(0)
