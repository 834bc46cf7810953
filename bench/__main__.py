"""``make bench``: run every benchmark, one JSON line each."""

from bench import extract, langid, match

for bench in (extract, match, langid):
    bench.main()
