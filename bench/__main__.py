"""``make bench``: run every benchmark, one JSON line each."""

from bench import extract, langid, match, phash

for bench in (extract, match, langid, phash):
    bench.main()
