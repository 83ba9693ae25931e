"""Benchmarks: this package against the HTTP-provider way of doing the same work, on the same emulator."""
