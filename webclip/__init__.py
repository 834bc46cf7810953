"""webclip: build CLIP-style image-text datasets from the web and train a compact CLIP."""

__version__ = "0.1.0"
