"""Deduplication and decontamination: URL, text and image (sha256, perceptual hash)."""
