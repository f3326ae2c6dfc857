"""Keep the host libraries' set-up noise out of the tools' output.

mmengine's ``is_installed`` (called whenever a config is read) imports and
then reloads ``pkg_resources``, and setuptools warns on every import that
``pkg_resources is deprecated as an API``: five times per run of a tool,
attributed to ``mmengine.utils.package_utils`` and, for the reloads, to
``importlib``. The warning is about the host's code and nothing a user of
ours can act on, so the tools hide it, and only it.
"""
import warnings

__all__ = ['HOST_MODULES', 'quiet_host_warnings']

#: Packages whose ``pkg_resources`` deprecation warnings are hidden:
#: the OpenMMLab hosts, MIM, and ``importlib`` (through which mmengine
#: reloads ``pkg_resources``).
HOST_MODULES = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain', 'mmdeploy',
                'mim', 'importlib')

#: The start of setuptools' message (a DeprecationWarning before setuptools
#: 80, a UserWarning from 80 on).
PKG_RESOURCES_MESSAGE = r'pkg_resources is deprecated as an API'


def quiet_host_warnings() -> None:
    """Hide the ``pkg_resources`` deprecation warnings of the host libraries.

    Only warnings with setuptools' message that Python attributes to a
    module of :data:`HOST_MODULES` are hidden; every other warning, and this
    one raised from any other module (ours included), shows as before.
    Calling it again adds nothing.

    Examples:
        >>> import warnings
        >>> quiet_host_warnings()
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.warn_explicit(
        ...         'pkg_resources is deprecated as an API', UserWarning,
        ...         'package_utils.py', 17,
        ...         module='mmengine.utils.package_utils')
        >>> caught
        []
    """
    modules = '|'.join(HOST_MODULES)
    warnings.filterwarnings(
        'ignore', message=PKG_RESOURCES_MESSAGE, module=rf'({modules})(\.|$)')
