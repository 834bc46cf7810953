"""The C allocator's settings for a long crawl: large transient buffers go back to the system when freed."""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's own starting value, kept fixed


def pin_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``nbytes`` for this process; True if set (False off glibc).

    glibc raises the threshold each time a mapped block is freed, up to 32 MiB. After the first multi-MB buffer
    (a page body or a sitemap cut at its cap), buffers that size come from the worker threads' heap arenas,
    which keep their pages: over 10,000 pages of the hostile web with its sitemaps, the crawl's RSS crept from
    101 to 148 MB. With the threshold fixed, such buffers are mapped and unmapped: 99 to 107 MB.
    """
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
    return mallopt(M_MMAP_THRESHOLD, nbytes) == 1
