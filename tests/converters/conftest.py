"""Fixtures of the converter tests: the reference key manifests."""
import gzip
import json
import os.path as osp
from collections import OrderedDict

import pytest
from checkpoint_sources import MANIFEST_NAMES, MANIFESTS, SOURCE_MANIFESTS


@pytest.fixture(scope='session')
def manifests():
    """Every manifest entry by name (``<source>_<variant>``)."""
    entries = {}
    for filename, _ in SOURCE_MANIFESTS.values():
        with gzip.open(osp.join(MANIFESTS, f'{filename}.json.gz'), 'rt') as f:
            entries.update(json.load(f))
    return entries


@pytest.fixture(scope='session')
def source_shapes(manifests):
    """``source_shapes(source, arch)``: the names and shapes of a source."""

    def get(source, arch):
        prefix = SOURCE_MANIFESTS[source][1]
        return OrderedDict(manifests[prefix + MANIFEST_NAMES[arch]])

    return get
