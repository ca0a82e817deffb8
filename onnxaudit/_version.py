"""The version, in one place: the package, the CLI's --version and the build (pyproject's dynamic version) read it."""

__version__ = "0.1.0"
