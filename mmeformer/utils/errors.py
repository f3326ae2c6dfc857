"""Errors that stop a run before it starts, each saying what to do.

The tools print them as one clean message, without a traceback: they are
about the user's files and options, not about the code. They live here,
below the models and the run-time layer, so that both raise the same errors
(a model refusing its config, the tools refusing a missing dataset).
"""

__all__ = [
    'SetupError', 'MissingResourceError', 'UnknownHostError',
    'UnsupportedOptionError', 'ConfigError', 'CheckpointError'
]


class SetupError(Exception):
    """A run cannot start; the message says why and what to do."""


class MissingResourceError(SetupError, FileNotFoundError):
    """Paths a run needs do not exist.

    Args:
        problems (list[tuple[str, str, str]]): ``(path, where, hint)`` for
            each missing path: the path, the config key it comes from and how
            to get it.
    """

    def __init__(self, problems) -> None:
        self.problems = problems
        lines = []
        for path, where, hint in problems:
            lines.append(f'{path} does not exist ({where}).')
            if hint:
                lines.append(f'  {hint}.')
        super().__init__('\n'.join(lines))


class UnknownHostError(SetupError, ValueError):
    """A config does not name a supported host in ``default_scope``."""


class UnsupportedOptionError(SetupError, ValueError):
    """An option cannot work with this config or on this machine."""


class ConfigError(SetupError, ValueError):
    """A config cannot be read, or the model it describes cannot be built."""


class CheckpointError(SetupError, ValueError):
    """A checkpoint cannot be read, or does not fit the model it is for."""
