"""The hosts' pkg_resources warnings are hidden, and only they."""
import warnings

import pytest

from mmeformer.utils import quiet_host_warnings

MESSAGE = ('pkg_resources is deprecated as an API. See '
           'https://setuptools.pypa.io/en/latest/pkg_resources.html')


def shown(*warnings_to_raise):
    """The warnings of ``(message, category, module)`` that still show
    after :func:`quiet_host_warnings`, attributed to ``module`` as Python
    attributes a warning to the caller's module."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        quiet_host_warnings()
        quiet_host_warnings()
        for message, category, module in warnings_to_raise:
            warnings.warn_explicit(message, category, f'{module}.py', 1,
                                   module)
    return [(str(w.message), w.category, w.filename) for w in caught]


@pytest.mark.parametrize('category', [DeprecationWarning, UserWarning])
@pytest.mark.parametrize(
    'module',
    ['mmengine.utils.package_utils', 'importlib', 'mmdet', 'mmcv.utils.ext'])
def test_the_hosts_pkg_resources_warning_is_hidden(module, category):
    """setuptools < 80 warns with a DeprecationWarning, 80 and 81 with a
    UserWarning; mmengine's reloads attribute it to importlib."""
    assert shown((MESSAGE, category, module)) == []


@pytest.mark.parametrize('module', [
    'mmeformer.models.backbones.base', '__main__', 'mmenginex', 'timm.models'
])
def test_the_same_warning_from_other_modules_shows(module):
    assert shown((MESSAGE, UserWarning, module)) == [(MESSAGE, UserWarning,
                                                      f'{module}.py')]


def test_other_warnings_of_the_hosts_show():
    other = '``build_loss`` would be deprecated soon'
    assert shown((other, UserWarning, 'mmseg.models.builder')) == [
        (other, UserWarning, 'mmseg.models.builder.py')
    ]
