"""X/Y/Z plots, the prompt matrix and their grid images: axes typed as A1111 types them, one request per
cell, the labelled grid PNG."""
