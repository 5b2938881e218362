"""The one cffi layer: every user of the compiled module ``squidguard_bloom.native._bloom``.

:mod:`.bloom` (the Bloom filter), :mod:`.listindex` (lookups in compiled,
memory-mapped lists), :mod:`.listbuild` (compiling a list, ``-C``) and
:mod:`.fastpath` (a batch of request lines in one C call).  They hand out
small typed Python objects; no cffi object or pointer leaves this package,
and nothing outside it imports ``_bloom``.
"""
