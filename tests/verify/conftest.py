"""Backdoored tiny models for the verify tests (trained once per session)."""

from tests.fixtures.backdoor import backdoor_models  # noqa: F401
