"""One error style for every command line of the project: one line on stderr, exit status 2.

``olmoearth-data``, ``olmoearth-model`` and ``olmoearth-twin`` build their parsers with
:class:`CliParser` (argparse's own usage errors become one line too, and ``--help`` shows every
option's default) and run their subcommand through :func:`run_command`, which turns the errors a
person can fix (a bad argument, a missing file, an unreachable server) into ``prog: error: <line>``.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

#: Exceptions that mean "the input is wrong", not "the code is wrong": printed as one line, exit 2.
#: ``RuntimeError`` is included because the pipeline raises it for refusals with a remedy (e.g. a
#: missing Planetary Computer key); ``KeyError`` for unknown names (modality, bandset, sample).
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    KeyError,
    IndexError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    RuntimeError,
)

EXIT_USAGE = 2


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (``KeyError``'s quotes dropped, newlines joined by ``; ``)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return text or type(exc).__name__


def fail(prog: str, message: str) -> int:
    """Print ``prog: error: message`` on stderr; returns the exit status (2) for ``return fail(...)``."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` keeps the description's line breaks and appends ``(default: …)`` to every option
    that has a default worth printing (not ``None``/``False``, and not already named in its help)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default is False
            or default == argparse.SUPPRESS
            or "(default" in text
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (``prog: error: …``), exit 2.

    Subparsers made by ``add_subparsers().add_parser`` are of this class too (argparse reuses the
    parent's class) and get :class:`HelpFormatter` unless given another.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message)
        raise SystemExit(EXIT_USAGE)


def run_command(prog: str, command: Callable[[], int | None]) -> int:
    """Run ``command``; a :data:`USER_ERRORS` exception becomes one line on stderr and exit 2."""
    try:
        return int(command() or 0)
    except USER_ERRORS as exc:
        return fail(prog, one_line(exc))
    except BrokenPipeError:  # `... | head`: the reader left; no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for SIGPIPE
