"""Prompt text -> conditioning: A1111's syntax, CLIP tokens and chunks, embeddings files, the encoder.
Imports engine.errors, engine.request and engine.models (headers, weights); never sampling, recipes or jobs."""
