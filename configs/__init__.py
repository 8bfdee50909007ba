"""The base both sides share: settings, character and voice profiles, paths, errors.

`nodes/` and `agent/` both import from here; this package imports neither of them.
"""
