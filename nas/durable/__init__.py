"""Crash-safe local files: cross-process locks."""
