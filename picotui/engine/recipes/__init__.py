"""Recipes on disk: A1111's parameters text and our JSON chunk, PNG text chunks, atomic saving.
Imports errors, request, sampling.samplers (names), models.headers and prompting.prompts; never jobs."""
