"""supervisord backend (the package's modules say which part each holds)."""

from procmgmt.backends.supervisord.activator import *  # noqa: F403
