"""Running work: the worker thread that owns torch, and the runner that carries one job from request to saved
PNGs. The top of the engine: it may import every other engine package; none imports it."""
