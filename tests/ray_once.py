"""A real local Ray for a test module outside tests/scheduler (whose conftest has the package's `local_ray`)."""
import contextlib
import logging

import ray


@contextlib.contextmanager
def local_ray():
    """The Ray this test session already runs, else one of its own, shut down afterwards."""
    if ray.is_initialized():
        yield
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             namespace="farm-tests")
    try:
        yield
    finally:
        ray.shutdown()
