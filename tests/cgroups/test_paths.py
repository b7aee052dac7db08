"""The cgroup path of a process, and the unit and container it names: every path shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linnix.cgroups.paths import UNIT_SUFFIXES, cgroup_of, container_of, decode_unit, unit_of

ID = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f"
ID2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
POD = "pod5f0b3c1e-8a6d-4e2f-9b7a-1c2d3e4f5a6b"
KPOD = "kubepods-burstable-pod5f0b3c1e_8a6d_4e2f_9b7a_1c2d3e4f5a6b.slice"

# path, unit, container
PATHS = [
    ("/", None, None),
    ("/init.scope", "init.scope", None),
    ("/system.slice/nginx.service", "nginx.service", None),
    ("/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service", None),
    ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope", None),
    # a user's own services are the user manager's: the user named them
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/sshd.service",
     "user@1000.service", None),
    # delegated below a unit: still the unit's
    ("/system.slice/docker.service/anything/else.service", "docker.service", None),
    # escapes: \x2d is '-', a leading '_' is systemd's own
    ("/system.slice/system-systemd\\x2dfsck.slice/systemd-fsck@dev-disk-by\\x2duuid-AB12.service",
     "systemd-fsck@dev-disk-by-uuid-AB12.service", None),
    ("/system.slice/_cpu.service", "cpu.service", None),
    ("/system.slice/caf\\xc3\\xa9.service", "café.service", None),
    # not systemd's: no unit
    ("/mygroup/nginx.service", None, None),
    ("/system.slice", None, None),
    ("/system.slice/.service", None, None),
    ("/system.slice/nginx service.service", None, None),
    ("/system.slice/nginx.timer", None, None),
    # Docker, systemd driver and cgroupfs driver
    (f"/system.slice/docker-{ID}.scope", f"docker-{ID}.scope", ID[:12]),
    (f"/docker/{ID}", None, ID[:12]),
    (f"/docker/{ID}/docker/{ID2}", None, ID[:12]),  # the outermost: the host's runtime
    # containerd, CRI-O, podman
    (f"/system.slice/cri-containerd-{ID}.scope", f"cri-containerd-{ID}.scope", ID[:12]),
    (f"/machine.slice/crio-{ID}.scope", f"crio-{ID}.scope", ID[:12]),
    (f"/machine.slice/libpod-{ID}.scope", f"libpod-{ID}.scope", ID[:12]),
    (f"/machine.slice/libpod-{ID}.scope/container", f"libpod-{ID}.scope", ID[:12]),
    (f"/machine.slice/libpod-conmon-{ID}.scope", f"libpod-conmon-{ID}.scope", None),
    (f"/machine.slice/crio-conmon-{ID}.scope", f"crio-conmon-{ID}.scope", None),
    # Kubernetes: systemd driver, and cgroupfs driver (with and without a QoS class)
    (f"/kubepods.slice/kubepods-burstable.slice/{KPOD}/cri-containerd-{ID}.scope",
     f"cri-containerd-{ID}.scope", ID[:12]),
    (f"/kubepods.slice/kubepods-burstable.slice/{KPOD}/docker-{ID}.scope",
     f"docker-{ID}.scope", ID[:12]),
    (f"/kubepods/burstable/{POD}/{ID}", None, ID[:12]),
    (f"/kubepods/{POD}/{ID}", None, ID[:12]),
    (f"/kubepods/burstable/{POD}", None, None),
    # a container's own cgroups below it cannot change what it is
    (f"/system.slice/docker-{ID}.scope/system.slice/docker-{ID2}.scope", f"docker-{ID}.scope",
     ID[:12]),
    # not ids: wrong length, upper case, not hex, not below docker or a pod
    (f"/docker/{ID[:63]}", None, None),
    (f"/docker/{ID.upper()}", None, None),
    (f"/docker/{ID[:63]}g", None, None),
    (f"/mygroup/{ID}", None, None),
    (f"/pods/{POD}/{ID}", None, None),
    (f"/system.slice/docker-{ID}.service", f"docker-{ID}.service", None),
]


@pytest.mark.parametrize(("path", "unit", "container"), PATHS)
def test_unit_and_container(path: str, unit: str | None, container: str | None) -> None:
    assert unit_of(path) == unit
    assert container_of(path) == container


@pytest.mark.parametrize(("text", "path"), [
    ("0::/system.slice/nginx.service\n", "/system.slice/nginx.service"),
    # a hybrid host: v1 hierarchies first, the unified one last
    ("9:name=systemd:/system.slice/a.service\n4:memory:/x\n0::/system.slice/a.service\n",
     "/system.slice/a.service"),
    ("0::/\n", "/"),
    ("0::/with space/and:colon\n", "/with space/and:colon"),
    # v1 only: no v2 path
    ("4:memory:/x\n1:cpu:/\n", None),
    ("", None),
    ("0::relative\n", None),
    # a name with a newline (kernels before 5.8 allowed one) forging a second line
    ("9:name=systemd:/user.slice/x\n0::/system.slice/sshd.service\n0::/user.slice/x\n", None),
    ("0::/user.slice/x\n0::/system.slice/sshd.service\n", None),
])
def test_cgroup_of(text: str, path: str | None) -> None:
    assert cgroup_of(text) == path


@pytest.mark.parametrize(("name", "decoded"), [
    ("plain.service", "plain.service"),
    ("a\\x2db.service", "a-b.service"),
    ("a\\x2D\\x2fb", "a-/b"),
    ("cut\\x2", "cut\\x2"),  # an escape cut short is kept as it is
    ("not\\xzz", "not\\xzz"),
    ("\\xff", "\ufffd"),  # a byte that is no UTF-8 alone
])
def test_decode_unit(name: str, decoded: str) -> None:
    assert decode_unit(name) == decoded


@given(st.text(alphabet="/_.\\x2dabcdef0123456789-@scopeservicepodkubedocker", max_size=300))
def test_any_path_gives_text_or_none(path: str) -> None:
    unit, container = unit_of(path), container_of(path)
    assert unit is None or unit.endswith(UNIT_SUFFIXES)
    assert container is None or (len(container) == 12 and container in path
                                 and set(container) <= set("0123456789abcdef"))


@pytest.mark.parametrize(("path", "unit", "container"), [
    ("/" + "a" * 1_000_000, None, None),
    ("/docker-" + "a" * 1_000_000 + ".scope", None, None),
    ("/" + "\\x2d" * 100 + "x.service", None, None),  # longer than a unit name may be
    ("/" + "\\x2d" * 60 + "x.service", "-" * 60 + "x.service", None),
    ("/docker" * 200_000 + "/" + ID, None, ID[:12]),
])
def test_hostile_paths(path: str, unit: str | None, container: str | None) -> None:
    # megabytes of crafted path: split once, each part compared with fixed text
    assert unit_of(path) == unit
    assert container_of(path) == container
