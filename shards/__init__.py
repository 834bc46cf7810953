"""Download curated pairs into WebDataset shards, dedupe and decontaminate images, reshard."""

import os

# img2dataset pulls in albumentations, which phones home for updates unless told not to; set it
# before anything imports img2dataset so worker processes inherit it too.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
