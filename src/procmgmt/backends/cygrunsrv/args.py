r"""cygrunsrv's ``--args``: one string that cygrunsrv splits by its own rule.

**How ``--args`` is split.** cygrunsrv stores ``--args`` as one registry
string and, when the service starts, splits it with its own
``eval_arglist`` (cygrunsrv.cc), *not* with the Windows command-line rules
(``CommandLineToArgvW``) nor a shell: arguments are separated by spaces
(only ``' '``: a tab or newline is an ordinary character); an argument that
*starts* with ``"`` or ``'`` runs to the next same quote character (or the
end of the string) and the quotes are dropped; any other argument runs to
the next space. There are no escapes, and a quote inside an unquoted
argument is literal. An empty ``--args`` means no arguments. So an argument
is written bare when it is non-empty, has no space and does not start with
a quote; else in ``"..."`` when it contains no ``"``; else in ``'...'`` when
it contains no ``'``. An argument that needs quoting and contains both quote
characters cannot be passed (:func:`quote_arg` raises; :meth:`.backend.CygrunsrvBackend.validate`
reports it): such a process can be run through the proxy by an override.
:func:`split_args` is that rule as a parser, used by the property tests.
"""

from __future__ import annotations

from collections.abc import Sequence


def arg_problem(arg: str) -> str | None:
    """Why ``arg`` cannot be one word of ``--args``, or None."""
    if "\0" in arg:
        return "contains a NUL character"
    if arg and " " not in arg and arg[0] not in "'\"":
        return None
    if '"' in arg and "'" in arg:
        return ("needs quoting (a space, an empty word or a leading quote) and contains both "
                "' and \", which cygrunsrv's argument splitting cannot represent together")
    return None


def quote_arg(arg: str) -> str:
    """One word of ``--args`` that cygrunsrv's splitter gives back as ``arg``."""
    problem = arg_problem(arg)
    if problem:
        raise ValueError(f"cygrunsrv argument {arg!r} {problem}")
    if arg and " " not in arg and arg[0] not in "'\"":
        return arg
    return f'"{arg}"' if '"' not in arg else f"'{arg}'"


def join_args(argv: Sequence[str]) -> str:
    """The ``--args`` string for ``argv``."""
    return " ".join(quote_arg(a) for a in argv)


def split_args(text: str) -> list[str]:
    """cygrunsrv's splitting of ``--args`` (eval_arglist), as documented above."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        stop = " "
        if text[i] in "'\"":
            stop = text[i]
            i += 1
        j = text.find(stop, i)
        if j < 0:
            j = n
        out.append(text[i:j])
        i = j + 1
    return out
