"""The example application package."""
