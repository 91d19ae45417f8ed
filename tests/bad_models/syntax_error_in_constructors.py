# expect: _lib/broken_constructors\.py:6: syntax error: closing parenthesis
from _lib.broken_constructors import webapp


def processes(settings):
    return {"web": webapp(40013)}
