"""Errors of the virus-scanning component."""


class ScannerUnavailable(Exception):
    """clamd could not be reached or did not answer in time; retry the scan later.

    This is never a verdict about the file: a caller that treated it as one would pass
    files unscanned (or reject clean ones) whenever clamd restarts.
    """


class InvalidClamdAddress(ValueError):
    """A clamd address setting is not ``tcp://HOST:PORT`` or ``unix:///ABSOLUTE/PATH``."""
