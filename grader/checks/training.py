"""Checks for training."""
