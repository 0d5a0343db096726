"""The denoising of one image as A1111 does it: sampler names (samplers), sigma schedules (schedules), the
k-diffusion samplers (ksamplers) over the CFG denoiser (denoiser), the noise stream (noise), the step loop and
decode (generate), img2img's step rule and latent upscale (img2img), the VAE encode (encode), the live preview.
Imports engine.errors and engine.hardware only; knows nothing of requests, files or jobs."""
