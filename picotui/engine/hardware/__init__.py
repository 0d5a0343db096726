"""How the work fits this machine: device and precision, the low-VRAM memory plan, the CUDA-graph speed path.
Imports only engine.errors: every other engine package may use it."""
