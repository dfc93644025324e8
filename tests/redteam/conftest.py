import logging

import pytest
import ray


@pytest.fixture(scope="package")
def local_ray():
    """One real local Ray for the red-team campaigns (as tests/scheduler/conftest.py has for its own)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             namespace="farm-tests")
    yield
    ray.shutdown()
