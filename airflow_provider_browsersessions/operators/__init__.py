"""Operators of the browser sessions provider."""
