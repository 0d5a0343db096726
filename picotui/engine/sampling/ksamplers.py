"""The k-diffusion samplers A1111 runs, written for picotui (same maths, same order of noise draws).

Each sampler takes `model(x, sigma) -> denoised` (the CFG denoiser), the starting latent `x` (already
multiplied by sigmas[0]), the schedule, and a `Draws` that supplies:
  ancestral()        the next draw of the image's own noise stream (A1111 hijacks k-diffusion's
                     torch.randn_like with its per-image generator); Euler a, DPM2 a, DPM++ 2S a, Restart, LCM
  brownian(s, s_n)   Brownian-tree noise between two sigmas (the SDE samplers; A1111's
                     BrownianTreeNoiseSampler seeded with the image seed)
  step(i, x, d)      called once per step with the denoised estimate (progress, preview, cancel)
eta is 1 and s_noise 1 (A1111's defaults); churn is 0, so Euler, Heun and DPM2 draw nothing.
References: k-diffusion's sampling.py (crowsonkb), A1111's modules/sd_samplers_extra.py (Restart) and
modules/sd_samplers_lcm.py (LCM). Sigmas are 0-dim tensors, as k-diffusion sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Draws:
    ancestral: Callable
    brownian: Callable
    step: Callable


def _d(x, sigma, denoised):
    return (x - denoised) / sigma  # the ODE derivative dx/dsigma


def _ancestral_split(sigma, sigma_next, eta: float = 1.0):
    """(sigma_down, sigma_up): where a deterministic step lands and how much fresh noise goes back on."""
    if not eta:
        return sigma_next, 0.0
    up = min(sigma_next, eta * (sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2) ** 0.5)
    return (sigma_next ** 2 - up ** 2) ** 0.5, up


def _lam(sigma):  # log-SNR time used by the DPM-Solver family
    return sigma.log().neg()


def euler(model, x, sigmas, draws):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        draws.step(i, x, denoised)
        x = x + _d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
    return x


def euler_ancestral(model, x, sigmas, draws):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        down, up = _ancestral_split(sigmas[i], sigmas[i + 1])
        draws.step(i, x, denoised)
        x = x + _d(x, sigmas[i], denoised) * (down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + draws.ancestral() * up
    return x


def heun(model, x, sigmas, draws):
    for i in range(len(sigmas) - 1):
        x = _heun_step(model, x, sigmas[i], sigmas[i + 1], lambda d, i=i, x=x: draws.step(i, x, d))
    return x


def _heun_step(model, x, sigma, sigma_next, report):
    denoised = model(x, sigma)
    report(denoised)
    d = _d(x, sigma, denoised)
    dt = sigma_next - sigma
    if sigma_next == 0:
        return x + d * dt
    x_euler = x + d * dt
    d_next = _d(x_euler, sigma_next, model(x_euler, sigma_next))
    return x + (d + d_next) / 2 * dt


def _dpm2_to(model, x, sigma, target, d):
    """DPM-Solver-2's move from sigma to target: the slope at the log-midpoint."""
    mid = sigma.log().lerp(target.log(), 0.5).exp()
    x_mid = x + d * (mid - sigma)
    return x + _d(x_mid, mid, model(x_mid, mid)) * (target - sigma)


def dpm2(model, x, sigmas, draws):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        draws.step(i, x, denoised)
        d = _d(x, sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigmas[i])
        else:
            x = _dpm2_to(model, x, sigmas[i], sigmas[i + 1], d)
    return x


def dpm2_ancestral(model, x, sigmas, draws):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        down, up = _ancestral_split(sigmas[i], sigmas[i + 1])
        draws.step(i, x, denoised)
        d = _d(x, sigmas[i], denoised)
        if down == 0:
            x = x + d * (down - sigmas[i])
        else:
            x = _dpm2_to(model, x, sigmas[i], down, d)
            x = x + draws.ancestral() * up
    return x


def _lms_coefficient(order: int, t, i: int, j: int) -> float:
    """Integral over [t_i, t_i+1] of the Lagrange basis polynomial of t_(i-j) on the last `order` points."""
    from scipy import integrate

    def basis(tau):
        value = 1.0
        for k in range(order):
            if k != j:
                value *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return value

    return integrate.quad(basis, t[i], t[i + 1], epsrel=1e-4)[0]


def lms(model, x, sigmas, draws, order: int = 4):
    points = sigmas.detach().cpu().numpy()
    slopes = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        slopes = (slopes + [_d(x, sigmas[i], denoised)])[-order:]
        draws.step(i, x, denoised)
        used = min(i + 1, order)
        coefficients = [_lms_coefficient(used, points, i, j) for j in range(used)]
        x = x + sum(c * d for c, d in zip(coefficients, reversed(slopes)))
    return x


def dpmpp_2s_ancestral(model, x, sigmas, draws):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        down, up = _ancestral_split(sigmas[i], sigmas[i + 1])
        draws.step(i, x, denoised)
        if down == 0:
            x = x + _d(x, sigmas[i], denoised) * (down - sigmas[i])
        else:
            t, t_next = _lam(sigmas[i]), _lam(down)
            h = t_next - t
            s = t + h / 2
            x_mid = (s.neg().exp() / t.neg().exp()) * x - (-h / 2).expm1() * denoised
            denoised_mid = model(x_mid, s.neg().exp())
            x = (t_next.neg().exp() / t.neg().exp()) * x - (-h).expm1() * denoised_mid
        if sigmas[i + 1] > 0:
            x = x + draws.ancestral() * up
    return x


def dpmpp_sde(model, x, sigmas, draws, r: float = 0.5):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        draws.step(i, x, denoised)
        if sigmas[i + 1] == 0:
            x = x + _d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
            continue
        t, t_next = _lam(sigmas[i]), _lam(sigmas[i + 1])
        h = t_next - t
        s = t + h * r
        sigma, sigma_s, sigma_next = t.neg().exp(), s.neg().exp(), t_next.neg().exp()
        down, up = _ancestral_split(sigma, sigma_s)
        s_down = _lam(down)
        x_s = (s_down.neg().exp() / sigma) * x - (t - s_down).expm1() * denoised
        x_s = x_s + draws.brownian(sigma, sigma_s) * up
        denoised_s = model(x_s, sigma_s)
        down, up = _ancestral_split(sigma, sigma_next)
        next_down = _lam(down)
        mixed = (1 - 1 / (2 * r)) * denoised + (1 / (2 * r)) * denoised_s
        x = (next_down.neg().exp() / sigma) * x - (t - next_down).expm1() * mixed
        x = x + draws.brownian(sigma, sigma_next) * up
    return x


def dpmpp_2m(model, x, sigmas, draws):
    previous = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        draws.step(i, x, denoised)
        t, t_next = _lam(sigmas[i]), _lam(sigmas[i + 1])
        h = t_next - t
        target = denoised
        if previous is not None and sigmas[i + 1] != 0:
            r = (t - _lam(sigmas[i - 1])) / h
            target = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
        x = (t_next.neg().exp() / t.neg().exp()) * x - (-h).expm1() * target
        previous = denoised
    return x


def _dpmpp_2m_sde(model, x, sigmas, draws, heun_correction: bool):
    previous = h_last = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        draws.step(i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = _lam(sigmas[i + 1]) - _lam(sigmas[i])
            decay = (-2 * h).expm1().neg()  # eta = 1: -h - eta*h = -2h
            x = sigmas[i + 1] / sigmas[i] * (-h).exp() * x + decay * denoised
            if previous is not None:
                change = (denoised - previous) * (h / h_last)
                x = x + ((decay / (-2 * h) + 1) if heun_correction else 0.5 * decay) * change
            x = x + draws.brownian(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * decay.sqrt()
        previous, h_last = denoised, (_lam(sigmas[i + 1]) - _lam(sigmas[i]))
    return x


def dpmpp_2m_sde(model, x, sigmas, draws):
    return _dpmpp_2m_sde(model, x, sigmas, draws, heun_correction=False)


def dpmpp_2m_sde_heun(model, x, sigmas, draws):
    return _dpmpp_2m_sde(model, x, sigmas, draws, heun_correction=True)


def dpmpp_3m_sde(model, x, sigmas, draws):
    d_1 = d_2 = h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        draws.step(i, x, denoised)
        h = _lam(sigmas[i + 1]) - _lam(sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h_eta = 2 * h  # eta = 1
            x = (-h_eta).exp() * x + (-h_eta).expm1().neg() * denoised
            phi_2 = h_eta.neg().expm1() / h_eta + 1
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                slope_0, slope_1 = (denoised - d_1) / r0, (d_1 - d_2) / r1
                first = slope_0 + (slope_0 - slope_1) * r0 / (r0 + r1)
                second = (slope_0 - slope_1) / (r0 + r1)
                x = x + phi_2 * first - (phi_2 / h_eta - 0.5) * second
            elif h_1 is not None:
                x = x + phi_2 * (denoised - d_1) / (h_1 / h)
            x = x + draws.brownian(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h).expm1().neg().sqrt()
        d_1, d_2, h_1, h_2 = denoised, d_1, h, h_1
    return x


def restart(model, x, sigmas, draws):
    """A1111's Restart sampler: Heun steps, and from 20 steps on, a Karras schedule with fewer main steps
    plus one or two jumps back up to sigma ~2 that are walked down again (fresh noise on each jump)."""
    import torch

    from picotui.engine.sampling.schedules import karras

    steps = len(sigmas) - 1
    restarts: dict = {}
    if steps >= 20:
        length, times = (steps // 4, 2) if steps >= 36 else (9, 1)
        sigmas = karras(steps - length * times, sigmas[-2].item(), sigmas[0].item())
        restarts = {int(torch.argmin(abs(sigmas - 0.1), dim=0)): (length + 1, times, 2)}
    pairs = []
    for i in range(len(sigmas) - 1):
        pairs.append((sigmas[i], sigmas[i + 1]))
        if i + 1 in restarts:
            length, times, top = restarts[i + 1]
            high = int(torch.argmin(abs(sigmas - top), dim=0))
            if high < i + 1:
                walk = karras(length, sigmas[i + 1].item(), sigmas[high].item())[:-1]
                pairs += list(zip(walk[:-1], walk[1:])) * times
    last = None
    for n, (sigma, sigma_next) in enumerate(pairs):
        if last is not None and last < sigma:
            x = x + draws.ancestral() * (sigma ** 2 - last ** 2) ** 0.5
        x = _heun_step(model, x, sigma, sigma_next, lambda d, n=n, x=x: draws.step(n, x, d))
        last = sigma_next
    return x


def lcm(model, x, sigmas, draws):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        draws.step(i, x, denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * draws.ancestral()
    return x


@dataclass(frozen=True)
class KSampler:
    run: Callable
    automatic: str | None = None  # A1111's schedule for "Automatic" (None: Uniform)
    discard_next_to_last: bool = False
    brownian: bool = False  # SDE: noise from a Brownian tree seeded with the image seed
    ancestral: bool = False  # draws from the image's noise stream after the first
    lcm: bool = False  # runs on A1111's LCM denoiser


# A1111 >= 1.9's k-diffusion table (modules/sd_samplers_kdiffusion.py samplers_k_diffusion, Restart, LCM).
KSAMPLERS: dict[str, KSampler] = {
    "DPM++ 2M": KSampler(dpmpp_2m, "Karras"),
    "DPM++ SDE": KSampler(dpmpp_sde, "Karras", brownian=True),
    "DPM++ 2M SDE": KSampler(dpmpp_2m_sde, "Exponential", brownian=True),
    "DPM++ 2M SDE Heun": KSampler(dpmpp_2m_sde_heun, "Exponential", brownian=True),
    "DPM++ 2S a": KSampler(dpmpp_2s_ancestral, "Karras", ancestral=True),
    "DPM++ 3M SDE": KSampler(dpmpp_3m_sde, "Exponential", discard_next_to_last=True, brownian=True),
    "Euler a": KSampler(euler_ancestral, ancestral=True),
    "Euler": KSampler(euler),
    "LMS": KSampler(lms),
    "Heun": KSampler(heun),
    "DPM2": KSampler(dpm2, "Karras", discard_next_to_last=True),
    "DPM2 a": KSampler(dpm2_ancestral, "Karras", discard_next_to_last=True, ancestral=True),
    "Restart": KSampler(restart, "Karras", ancestral=True),
    "LCM": KSampler(lcm, ancestral=True, lcm=True),
}
