"""Fixtures: the default device's queue, a seeded generator, poisoned outputs."""
import os
import zlib

import numpy as np
import pytest

import facl
from facl import _alloc


@pytest.fixture(scope="session")
def queue():
    return facl.default_queue()


@pytest.fixture
def rng(request):
    # A fixed seed per test (its name), so a failure reproduces; fresh data per test.
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(autouse=True)
def poisoned_outputs():
    """Every output the functions allocate starts as NaN bytes, so an element the library
    does not write fails the check instead of passing with leftover memory."""
    _alloc.poison_outputs = True
    yield
    _alloc.poison_outputs = False


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: compiles many kernel variants (minutes on "
                                       "PoCL); runs only with FACL_PYTHON_SLOW=1")


def pytest_collection_modifyitems(config, items):
    # Each kernel variant compiles once per cache directory, tens of seconds on PoCL
    # (the KV-cache ones more): the default suite takes one case per feature, the slow
    # one (meson test --setup=slow python_slow) the whole matrix.
    if os.environ.get("FACL_PYTHON_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set FACL_PYTHON_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
