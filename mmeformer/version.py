"""Version of mmeformer."""
__version__ = '0.1.0'


def parse_version_info(version_str: str) -> tuple:
    """Parse a version string like ``'0.1.0'`` or ``'0.1.0rc1'``.

    Args:
        version_str (str): The version string.

    Returns:
        tuple: The numeric parts, then the pre-release tag if any.
    """
    parts = []
    for part in version_str.split('.'):
        if part.isdigit():
            parts.append(int(part))
        else:
            digits = ''.join(c for c in part if c.isdigit())
            tag = part[len(digits):]
            parts.extend([int(digits), tag])
    return tuple(parts)


version_info = parse_version_info(__version__)
