"""Build hook only: cffi has no pyproject keys, so it is named here."""

from setuptools import setup

setup(cffi_modules=["build_ext.py:ffibuilder"])
