"""damo: a DAMON-style data access monitor for Linux processes."""

__version__ = "0.1.0"
