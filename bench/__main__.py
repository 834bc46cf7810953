"""``make bench``: run every benchmark, one JSON line each (``bench.curate_scale`` is separate: minutes)."""

from bench import crawl, download, extract, langid, loader, match, phash, train_speed, warc

if __name__ == "__main__":  # worker processes that re-import this module must not rerun the benchmarks
    for bench in (extract, warc, crawl, match, langid, phash, download, train_speed, loader):
        bench.main()
