"""Caja: a self-hostable gateway for Mexico's offline payment rails, speaking the Conekta v2 API."""

__version__ = "0.1.0"
