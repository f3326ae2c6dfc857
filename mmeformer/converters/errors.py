"""The error every converter failure is reported with."""


class ConversionError(Exception):
    """A checkpoint cannot be converted: a problem the user can fix (a wrong
    file, source or variant, an incomplete or unsafe checkpoint), which the
    command line tool prints without a traceback."""
