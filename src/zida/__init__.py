"""Zida (自搭): a self-hosted low-code backend wire-compatible with the Yida and WeDa OpenAPIs."""

__all__ = ["__version__"]

__version__ = "0.1.0"
