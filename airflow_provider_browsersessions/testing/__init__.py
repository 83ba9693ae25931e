"""Offline test support: an emulator of both session APIs, its CLI and a pytest plugin."""
