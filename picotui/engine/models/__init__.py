"""Model files: the library (scan, sniff headers, hashes), weight readers, the LDM key layout, loading a
pipeline, the demo model. Imports only engine.errors, engine.hardware and picotui.paths."""
