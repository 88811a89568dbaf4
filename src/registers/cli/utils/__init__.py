"""Helpers behind ``registers.cli``: signature reflection and annotation conversion."""
