"""``make bench``: run every benchmark, one JSON line each."""

from bench import extract

for bench in (extract,):
    bench.main()
