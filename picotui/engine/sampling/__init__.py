"""The denoising of one image: sampler names -> schedulers, the step loop and decode, the live preview.
Imports engine.errors and engine.hardware only; knows nothing of requests, files or jobs."""
