"""Build qsyncd's one optional C extension; everything else is in pyproject.toml.

``qsyncd._md5pair`` computes a part's MD5 and the whole file's MD5 in one pass (see the C file).
It is optional: without a C compiler the install still succeeds and qsyncd uses hashlib
(``qsyncd.md5pair.NATIVE`` is then False and large uploads cost about 0.9x more CPU).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[Extension("qsyncd._md5pair", sources=["qsyncd/_md5pair.c"], optional=True, extra_compile_args=["-O2"])]
)
