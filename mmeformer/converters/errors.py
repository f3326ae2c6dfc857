"""The error every converter failure is reported with."""


class ConversionError(Exception):
    """A checkpoint cannot be converted; the message says what is wrong.

    Conversions raise it for every problem a user can fix (a wrong file,
    source or variant, an incomplete or unsafe checkpoint), so that the
    command line tool can print the message without a traceback.
    """
