"""Everything that is not UI. Never imports textual; torch is imported lazily (worker thread).

Packages, lowest first; each may import only those before it (tests/test_architecture.py enforces this):
  errors                      one-line errors people read (a module)
  hardware/                   device, precision, memory plan, CUDA-graph speed path
  sampling/                   A1111's samplers, schedules and noise; one image's denoise and decode, preview
  request, events             what a job asks for and what the worker reports (modules)
  models/                     model files: library, headers, hashes, weights, LDM layout, loading, demo
  upscaling/                  source pictures, A1111's resize modes, upscalers (Lanczos, spandrel models, tiled)
  prompting/                  A1111 prompt syntax, CLIP tokens, embeddings, the encoder
  recipes/                    parameters text, PNG chunks, saving, the A1111 parity report
  jobs/                       the worker thread and the job runner
  plots/                      X/Y/Z plots and the prompt matrix: axes, cells, the labelled grid image
"""
