"""Dialects: each translates one wire format to core calls and core results/errors back."""
