"""Sensors of the browser sessions provider."""
