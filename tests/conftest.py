import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def isolate_default_scope():
    """Keep a test's default scope from leaking into the next test.

    mmengine's current default scope is the most recently created one, and a
    Runner built by one test (scope ``mmengine``, ``mmdet``, ...) would
    otherwise decide which registry the next test's builds search.
    """
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)
