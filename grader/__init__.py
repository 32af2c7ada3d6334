"""An autograder for PyTorch courses."""

__version__ = "0.1.0"
