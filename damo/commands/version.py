"""`damo version` (and `damo --version`): which damo this is."""

NAME = "version"
GROUP = None


def text() -> str:
    from damo import __version__

    return f"damo {__version__}"


def run() -> None:
    """Print damo's version."""
    print(text())
