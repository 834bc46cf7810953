"""The C allocator's settings for a long crawl: large transient buffers go back to the system when freed."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's own starting value, kept fixed during the crawl
# Where glibc's dynamic rule ends up once large blocks come and go (its 64-bit maximum, and trim at twice
# that): setting any threshold turns the dynamic rule off for good, so after the crawl the process gets the
# state a long-running allocator-heavy program (torch training in the same process) would have reached.
MMAP_THRESHOLD_MAX, TRIM_THRESHOLD_AFTER = 32 * 1024 * 1024, 64 * 1024 * 1024


@contextmanager
def crawl_allocator() -> Iterator[bool]:
    """The mmap threshold pinned for the crawl, then set to glibc's dynamic maximum (yields whether pinned)."""
    pinned = pin_mmap_threshold()
    try:
        yield pinned
    finally:
        if pinned:
            _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
            _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_AFTER)


def pin_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``nbytes`` for this process; True if set (False off glibc).

    glibc raises the threshold each time a mapped block is freed, up to 32 MiB. After the first multi-MB buffer
    (a page body or a sitemap cut at its cap), buffers that size come from the worker threads' heap arenas,
    which keep their pages: over 10,000 pages of the hostile web with its sitemaps, the crawl's RSS crept from
    101 to 148 MB. With the threshold fixed, such buffers are mapped and unmapped: 99 to 107 MB.
    """
    return _mallopt(M_MMAP_THRESHOLD, nbytes)


def _mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt``; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: their own allocator rules
            return False
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(param, value) == 1
