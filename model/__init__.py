"""A compact CLIP: image and text towers, contrastive loss, trainer and evaluation."""
