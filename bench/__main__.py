"""``make bench``: run every benchmark, one JSON line each."""

from bench import download, extract, langid, match, phash

for bench in (extract, match, langid, phash, download):
    bench.main()
