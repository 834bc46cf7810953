"""``make bench``: run every benchmark, one JSON line each."""

from bench import download, extract, langid, loader, match, phash, train_speed

for bench in (extract, match, langid, phash, download, train_speed, loader):
    bench.main()
