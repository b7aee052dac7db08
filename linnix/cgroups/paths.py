"""A process's cgroup v2 path, and the systemd unit and container it names.

Pure text functions, no I/O: :func:`cgroup_of` takes what /proc/PID/cgroup
holds, :func:`unit_of` and :func:`container_of` a path from it.  A path is
chosen by whoever creates the cgroup, so it is hostile input: it is only ever
split at ``/`` and each part compared with fixed prefixes and suffixes, in
time linear in its length (no regular expression).

Whose word counts, where a path could lie: a process that may create cgroups
below its own (a container with a delegated subtree, a user's service manager)
can name them as it likes, ``sshd.service`` or ``docker-<64 hex>.scope``.  So
both names are read from the top of the path down, and the first match wins:
the part that the host's own service manager or container runtime created,
never one a delegated subtree added below it.

* unit: as systemd reads it, the first part after the leading slices
  (``system.slice``, ``user-1000.slice``) when it is a unit that holds
  processes (``.service``, ``.scope``, ``.socket``, ``.mount``, ``.swap``):
  ``/system.slice/nginx.service`` is ``nginx.service``, and a user's own
  services are the user manager's, ``user@1000.service``.  systemd's escapes
  are decoded: a leading ``_`` it adds to some names is dropped and ``\\xHH``
  becomes the byte it stands for (``dev-disk-by\\x2duuid`` is
  ``dev-disk-by-uuid``).  Outside systemd's paths (``/docker/...``, ``/``)
  there is no unit.
* container: the id of the outermost container the path names, its first 12
  hex digits, from ``docker-ID.scope``, ``cri-containerd-ID.scope``,
  ``crio-ID.scope``, ``libpod-ID.scope`` (systemd-managed runtimes, with or
  without Kubernetes' ``kubepods-...-podUID.slice`` above them), or a bare ID
  below ``docker`` or below a Kubernetes ``podUID`` (cgroupfs-managed).  An ID
  is 64 lower-case hex digits; anything else is no container.
"""

from __future__ import annotations

__all__ = ["CONTAINER_ID_LEN", "UNIT_SUFFIXES", "cgroup_of", "container_of", "decode_unit",
           "unit_of"]

# what systemd calls a unit name at most (UNIT_NAME_MAX)
UNIT_NAME_MAX = 256
# the kinds of unit whose cgroup holds processes (a slice only groups other cgroups)
UNIT_SUFFIXES = (".service", ".scope", ".socket", ".mount", ".swap")
CONTAINER_ID_LEN = 12  # digits of a container id shown, as `docker ps` shows them
_ID_DIGITS = 64
_HEX = frozenset("0123456789abcdef")
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")
# systemd-managed container scopes: the runtime's prefix, then the id, then ".scope"
_SCOPE_PREFIXES = ("docker-", "cri-containerd-", "crio-", "libpod-")


def cgroup_of(text: str) -> str | None:
    """The cgroup v2 path in the text of /proc/PID/cgroup: its ``0::`` line, or None.

    On a hybrid host the v1 hierarchies have lines of their own (``4:memory:/x``);
    only the unified hierarchy's line, ``0::/path``, is the v2 path.  Two such
    lines give None: kernels before 5.8 let a cgroup's name hold a newline, and
    so a second, made-up ``0::`` line, which must never pass for the real one.
    """
    found = None
    for line in text.split("\n"):
        if line.startswith("0::"):
            if found is not None:
                return None
            found = line[3:]
    return found if found is not None and found.startswith("/") else None


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def unit_of(path: str) -> str | None:
    """The systemd unit the cgroup at ``path`` belongs to (see the module), or None."""
    for part in _parts(path):
        name = decode_unit(part[1:] if part.startswith("_") else part)
        if name.endswith(".slice"):
            continue  # slices only group: the unit is below them
        return name if _is_unit(part, name) else None
    return None


def _is_unit(part: str, name: str) -> bool:
    """Whether ``part`` (``name`` once decoded) is a unit systemd would have made."""
    if len(part) > UNIT_NAME_MAX or not _UNIT_CHARS.issuperset(part):
        return False
    stem = next((name[:-len(s)] for s in UNIT_SUFFIXES if name.endswith(s)), "")
    return bool(stem.strip("@"))


def decode_unit(name: str) -> str:
    """``name`` with systemd's ``\\xHH`` escapes replaced by the bytes they stand for."""
    if "\\x" not in name:
        return name
    out = bytearray()
    i, n = 0, len(name)
    while i < n:
        if name.startswith("\\x", i) and i + 4 <= n and _is_hex(name[i + 2:i + 4]):
            out.append(int(name[i + 2:i + 4], 16))
            i += 4
        else:
            out.extend(name[i].encode("utf-8"))
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def container_of(path: str) -> str | None:
    """The id of the outermost container the path names, 12 hex digits, or None."""
    above = ""  # the part above this one
    kube = False  # below a Kubernetes kubepods directory
    for part in _parts(path):
        found = _scope_id(part) or _bare_id(part, above, kube)
        if found is not None:
            return found[:CONTAINER_ID_LEN]
        kube = kube or part.startswith("kubepods")
        above = part
    return None


def _scope_id(part: str) -> str | None:
    """The id in ``docker-ID.scope`` and its kin, or None."""
    if not part.endswith(".scope"):
        return None
    for prefix in _SCOPE_PREFIXES:
        if part.startswith(prefix):
            digits = part[len(prefix):-len(".scope")]
            return digits if _is_id(digits) else None
    return None


def _bare_id(part: str, above: str, kube: bool) -> str | None:
    """A bare id below ``docker``, or below a ``podUID`` directory under kubepods; or None."""
    if not _is_id(part):
        return None
    return part if above == "docker" or (kube and above.startswith("pod")) else None


def _is_id(text: str) -> bool:
    return len(text) == _ID_DIGITS and _HEX.issuperset(text)
