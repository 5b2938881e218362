"""The one cffi layer: every user of the compiled module ``squidguard_bloom.native._bloom``.

:mod:`.bloom` (the Bloom filter), :mod:`.listindex` (lookups in compiled,
memory-mapped lists), :mod:`.listbuild` (compiling a list, ``-C``),
:mod:`.fastpath` (a batch of request lines in one C call) and :mod:`.accesslog` (the
monitor's scanner of access.log lines).  They hand out
small typed Python objects; no cffi object or pointer leaves this package,
and nothing outside it imports ``_bloom``.
"""
