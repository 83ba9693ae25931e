"""Hooks of the browser sessions provider."""
