"""Command plugins: every public module here is loaded by ``load_plugins``."""
