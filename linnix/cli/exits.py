"""The exit statuses of ``linnix``, shared by the command modules and ``main``.

0 success, 1 failure found (rule errors, failed tests, bad trace), 2 usage
error (including an invalid configuration file), 3 internal error (a bug),
130 interrupted (128 + SIGINT).
"""

from __future__ import annotations

__all__ = ["EXIT_BUG", "EXIT_FAIL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
