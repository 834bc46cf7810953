"""``make bench``: run every benchmark, one JSON line each."""

from bench import extract, langid

for bench in (extract, langid):
    bench.main()
