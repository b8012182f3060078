"""Helpers without ssod dependencies of their own: box geometry and process-group-safe collectives."""
