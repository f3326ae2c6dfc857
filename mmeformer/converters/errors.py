"""The error every converter failure is reported with."""
from typing import Iterable, List, Sequence, Tuple


class ConversionError(Exception):
    """A checkpoint cannot be converted; the message says what is wrong.

    Conversions raise it for every problem a user can fix (a wrong file,
    source or variant, an incomplete or unsafe checkpoint), so that the
    command line tool can print the message without a traceback.
    """


def describe_problems(groups: Sequence[Tuple[str, Iterable[str]]],
                      limit: int = 20) -> str:
    """Format named lists of problems, one item a line.

    Args:
        groups (Sequence[tuple[str, Iterable[str]]]): ``(title, items)``
            pairs; empty groups are left out.
        limit (int): Items shown per group; the rest are counted.
            Defaults to 20.

    Returns:
        str: The formatted text, empty when there is no problem.
    """
    lines: List[str] = []
    for title, items in groups:
        items = list(items)
        if not items:
            continue
        lines.append(f'{title} ({len(items)}):')
        lines += [f'  {item}' for item in items[:limit]]
        if len(items) > limit:
            lines.append(f'  ... and {len(items) - limit} more')
    return '\n'.join(lines)
