"""Persistence: every SQL statement of Caja lives in this package."""
