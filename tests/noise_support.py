"""Independent references for the noise tests: Philox4x32-10 and curand's Box-Muller written out per
element from their definitions, and A1111's variation slerp written out per column (none of it uses
picotui's noise module)."""

from __future__ import annotations

import math

import numpy as np

M = (0xD2511F53, 0xCD9E8D57)
W = (0x9E3779B9, 0xBB67AE85)


def philox_scalar(counter, key):
    """Philox4x32-10 for one counter, word by word as Salmon et al. define it (independent of noise.py)."""
    c, k = list(counter), list(key)
    for r in range(10):
        if r:
            k = [(k[0] + W[0]) & 0xFFFFFFFF, (k[1] + W[1]) & 0xFFFFFFFF]
        p0, p1 = M[0] * c[0], M[1] * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & 0xFFFFFFFF, (p0 >> 32) ^ c[3] ^ k[1], p0 & 0xFFFFFFFF]
    return c


def cuda_randn_element(seed, offset, index):
    """Element `index` of torch's CUDA randn (tensor no larger than the GPU's thread count): curand's
    Box-Muller (sine half) on Philox words 0 and 1 of counter (offset, 0, index, 0), key = the 64-bit seed."""
    x, y, _, _ = philox_scalar((offset, 0, index, 0), (seed & 0xFFFFFFFF, seed >> 32))
    inv = float(np.float32(2.3283064e-10))
    inv_2pi = float(np.float32(2.3283064e-10 * 6.2831855))
    u, v = x * inv + inv / 2, y * inv_2pi + inv_2pi / 2
    return math.sqrt(-2.0 * math.log(u)) * math.sin(v)


def slerp_per_column(t, low, high):
    """A1111's variation mix written out: for every channel and column, the spherical interpolation
    sin((1-t)w)/sin(w) * low + sin(t w)/sin(w) * high of the column vectors, w their angle."""
    low, high = low.double().numpy(), high.double().numpy()
    out = np.empty_like(low)
    for c in range(low.shape[0]):
        for x in range(low.shape[2]):
            a, b = low[c, :, x], high[c, :, x]
            w = math.acos(float(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))))
            out[c, :, x] = math.sin((1 - t) * w) / math.sin(w) * a + math.sin(t * w) / math.sin(w) * b
    return out
