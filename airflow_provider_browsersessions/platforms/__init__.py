"""Platforms of the browser sessions provider."""
