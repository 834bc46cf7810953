"""Shim for Beam's ``--setup_file``: Dataflow workers build the same package from pyproject.toml."""

from setuptools import setup

setup()
