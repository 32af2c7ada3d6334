"""The hypothesis settings every check runs under, under `grader` and under plain pytest alike.

Derandomized, no example database (nothing written into a pack or a submission, no replay of
old failures), no deadline (a first torch call takes a second), one bug reported, no explain
phase: the same submission draws the same examples and gets the same grade everywhere.
"""

from __future__ import annotations

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity

from grader.pack import DEFAULT_EXAMPLES

PROFILE = "grading"


def _only_global_constants() -> None:
    """Make generation independent of which modules happen to be loaded.

    Hypothesis (6.131+) mixes literals found in "local" modules (anything outside
    site-packages: this grader when installed editable, the loaded reference solutions) into
    the values it draws, and caches that pool at its first use. Examples would then differ
    between an editable and a regular install, between `--only` and a full run, and between
    the instructor's grader and a student release. Grading uses hypothesis's own constants
    only. (A private hook: without it, hypothesis works as before.)"""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:
        return
    if hasattr(providers, "_get_local_constants"):
        nothing_local = Constants()
        providers._get_local_constants = lambda: nothing_local
        if hasattr(providers, "CONSTANTS_CACHE"):  # pools cached before this point
            providers.CONSTANTS_CACHE = type(providers.CONSTANTS_CACHE)(1024)


_only_global_constants()

hypothesis.settings.register_profile(
    PROFILE,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    print_blob=False,
    verbosity=Verbosity.quiet,
    max_examples=DEFAULT_EXAMPLES,
)


def grading_settings(max_examples: int, shrink: bool = True) -> hypothesis.settings:
    """The grading profile with this many examples, shrinking failing inputs or not."""
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else \
        (Phase.explicit, Phase.generate)
    return hypothesis.settings(hypothesis.settings.get_profile(PROFILE),
                               max_examples=max_examples, phases=phases)
