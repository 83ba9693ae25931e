"""Triggers of the browser sessions provider."""
