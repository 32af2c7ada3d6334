"""An autograder for PyTorch courses."""

import os

# MKL's own memory manager is not fork-safe: a batch job forked from the warm grader once spun
# forever in it (mm_account_ptr_by_tid) on its first matrix product. Plain malloc is; this
# must be set before torch loads MKL.
os.environ.setdefault("MKL_DISABLE_FAST_MM", "1")

__version__ = "0.1.0"
