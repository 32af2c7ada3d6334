"""Checks for autograd."""
