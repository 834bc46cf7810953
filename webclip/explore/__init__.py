"""``webclip explore``: a local, read-only web page over a run (standard library server, offline page)."""
