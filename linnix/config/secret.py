"""Secret files named by the configuration (a webhook's signing key): read only when safe.

A secret lives in its own file, never in ``linnix.toml``; that file must be
readable by its owner alone (mode 0600 or stricter), as ssh demands of a
private key, so that a secret left readable by others is noticed at once
rather than used.  The mode is checked on the file actually opened, so a file
swapped in between the check and the read is checked too.  A caller may also
name who may own the file (a model's API key: root or the agent's own user).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection

__all__ = ["SECRET_MAX_BYTES", "SecretFileError", "read_secret"]

SECRET_MAX_BYTES = 4096  # far more than any key; more is not a secret file


class SecretFileError(Exception):
    """A secret file that cannot be used; the message says why, for the operator."""


def read_secret(path: str, owners: Collection[int] | None = None) -> bytes:
    """The secret in ``path``, without surrounding white space.

    Raises :class:`SecretFileError` when the file is missing, not a regular
    file, readable or writable by its group or others, owned by a user not in
    ``owners`` (when given), empty, or too large.
    """
    try:  # O_NONBLOCK: a FIFO in its place must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise SecretFileError(f"the secret file {path} does not exist") from None
    except OSError as err:
        raise SecretFileError(f"cannot read the secret file {path}: "
                              f"{err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"the secret file {path} is not a regular file")
        if owners is not None and info.st_uid not in owners:
            raise SecretFileError(
                f"the secret file {path} is owned by uid {info.st_uid}: only root or the "
                f"agent's user (uid {os.geteuid()}) may own it (chown)")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretFileError(
                f"the secret file {path} has mode {mode:04o}: others than its owner may "
                f"read or change it; make it 0600 or stricter (chmod 600 {path})")
        data = os.read(fd, SECRET_MAX_BYTES + 1)
    except OSError as err:
        raise SecretFileError(f"cannot read the secret file {path}: "
                              f"{err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > SECRET_MAX_BYTES:
        raise SecretFileError(f"the secret file {path} is larger than {SECRET_MAX_BYTES} "
                              "bytes: is it the right file?")
    secret = data.strip()
    if not secret:
        raise SecretFileError(f"the secret file {path} is empty")
    return secret
