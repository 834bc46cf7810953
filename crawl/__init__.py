"""Get candidate (image URL, alt, page URL) pairs from live sites and Common Crawl archives."""
