"""Checks for networks."""
