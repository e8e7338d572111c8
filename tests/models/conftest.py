"""Tiny-profile models, built once per test session (they are frozen: tests only read them)."""

import pytest


@pytest.fixture(scope="session")
def tiny_profile():
    from v2a.models import load_profile

    return load_profile("tiny")


@pytest.fixture(scope="session")
def tiny_clip(tiny_profile):
    from v2a.models import build_clip

    return build_clip(tiny_profile["clip"])


@pytest.fixture(scope="session")
def tiny_clap(tiny_profile):
    from v2a.models import build_clap

    return build_clap(tiny_profile["clap"])


@pytest.fixture(scope="session")
def tiny_generator(tiny_profile):
    from v2a.models import build_generator

    return build_generator(tiny_profile["generator"])
