"""A constructors module with a syntax error (imported by syntax_error_in_constructors)."""
from procmgmt import Process


def webapp(port):
    return Process(name="web", process="/bin/sleep", args=[str(port])
