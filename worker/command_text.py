"""What the process runtime reads in a command's text before it runs it.

- A command that says its shell's pid (``$$``) gets a shell of its own when
  forked by the launcher (worker.launcher), whose forks share its pid.
- A command that is one program with its arguments (``date +%s.%N``,
  ``node job.js``) is exec'd by the run's shell instead of forked from it,
  as ``bash -c`` does with such a command (Debian's dash forks it): one
  process a run, not two. The shell that waited for the program and then
  exited was a fifth of a burst's CPU (1,000 runs of ``date`` released at
  once: p99 475 -> 410 ms, five rounds each, alternated). The program is
  then its run's process group leader, as a command an interactive shell
  runs is: ``setsid`` would fork and return at once, so it keeps its shell.

Anything else is run as written: when in doubt, the answer is no, which
costs a fork and changes nothing a command can see.
"""

from __future__ import annotations

import functools
import os
import re
import shutil

_NEEDS_OWN_SHELL = re.compile(r"\$\$|\$\{\$")  # "$$" or "${$...}": the shell's own pid

# More than one command, a redirection, a compound or a substitution: the
# shell has work to do after (or around) the program, so it must stay.
_SHELL_WORK = re.compile(r"[;&|(){}<>`\\\n\r]")
_PROGRAM = re.compile(r"[A-Za-z0-9_./+-]+")  # a plain word: no quoting, no $, no assignment

_WORD_BREAK = re.compile(r"[ \t]+")  # what dash splits words on (not every str.isspace())
# dash's builtins and reserved words. ``exec echo`` would run /bin/echo,
# which treats backslashes otherwise, and ``exec cd`` finds no program.
# ``setsid``, as a group leader, forks its program and exits: the run
# would end at once, its program left outside the run's group.
_KEEP_SHELL = frozenset(
    ". : [ alias bg break cd chdir command continue echo eval exec exit export false fc fg "
    "getopts hash jobs kill local printf pwd read readonly return set shift test times trap "
    "true type ulimit umask unalias unset wait "
    "! case do done elif else esac fi for if in then until while "
    "setsid".split()
)


def needs_own_shell(texts: list[str]) -> bool:
    """A command that says its shell's pid gets a shell of its own."""
    return any(_NEEDS_OWN_SHELL.search(t) for t in texts)


def one_program(command: str, path: str, cwd: str) -> bool:
    """Whether ``command`` is one program found on ``path`` (or at a path,
    from ``cwd``) with plain arguments, so its shell may exec it.

    A program that is not found is left to the shell, whose message for it
    stays "NAME: not found" (an exec'd one would say "exec: NAME: not found").
    The search is remembered (37 us a run, in the arming of a burst): a
    program removed since is exec'd, and not found, all the same; one
    installed since keeps its shell until the worker restarts.
    """
    if _SHELL_WORK.search(command) or _NEEDS_OWN_SHELL.search(command):
        return False
    program = _WORD_BREAK.split(command.strip(" \t"), maxsplit=1)[0]
    if program in _KEEP_SHELL or not _PROGRAM.fullmatch(program):
        return False
    if "/" in program:
        found = os.path.join(cwd, program)
        return os.path.isfile(found) and os.access(found, os.X_OK)
    if any(not entry.startswith("/") for entry in path.split(":")):
        return False  # searched from the run's folder, not ours
    return _on_path(program, path)


@functools.lru_cache(maxsize=512)
def _on_path(program: str, path: str) -> bool:
    return shutil.which(program, path=path) is not None
