"""The package version, importable without importing the package (or torch)."""

__version__ = "0.1.0"
