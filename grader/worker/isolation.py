"""Isolation layers the worker puts on itself before any student code runs.

Each layer is tried on its own and degrades gracefully: `apply(policy)` returns, for every layer,
either "active" or why it is not. The worker reports that list in its first reply, before it
imports a single student file, so the grader (and results.json) knows how isolated a run was.

Layers (Linux), in the order they are applied:
  cgroup   join a pids cgroup the grader made (caps processes, even for root; lets the grader
           kill every process the submission started)
  orphans  PR_SET_PDEATHSIG: the worker dies with the grader
  network  a new network namespace (root; a user namespace otherwise): no interface but a
           dead loopback
  disk     a private mount namespace with a tmpfs of the disk budget's size as the scratch folder
           (the copy of the submission moved into it) and as /dev/shm: writes past the budget
           fail with ENOSPC, and the files vanish with the worker
  limits   rlimits: address space, CPU seconds, file size, open files, processes, no core dumps
  uid      a grading-only uid/gid when started as root (then RLIMIT_NPROC applies too)
  landlock the filesystem view: read the system and the Python installation minus every
           protected folder, a few devices, the worker's own /proc entries and a few system files
           of /proc (no other process's); read+write the scratch folder (with the copy of the
           submission), nothing else; no TCP; no signals to the grader
  seccomp  socket() only for AF_UNIX: no network even where namespaces are unavailable

Only this module's plain-ctypes code and the standard library are used: it runs in a fresh
interpreter that has imported nothing else yet.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal
import struct
from dataclasses import dataclass, field

ACTIVE = "active"
# Not a layer: beside the layers' states, the sandbox reports the disk budget (MiB) there.
DISK_BUDGET_KEY = "disk_budget_mib"
TORCH_IMPORT_BYTES = 2 << 30  # the address space `import torch` (and its libraries) maps
LAYERS = ("cgroup", "orphans", "network", "disk", "limits", "uid", "landlock", "seccomp")
PROTECTS = {
    "cgroup": "fork bombs (a pids limit that holds even for root); stray processes are killed",
    "orphans": "workers outliving a killed grader",
    "network": "connections to the network and to services on the host's loopback",
    "disk": "filling the disk: all files a submission writes share one budget (a tmpfs)",
    "limits": "memory hogs, CPU burners, huge files, fd floods, core dumps",
    "uid": "writing the grader's files, signalling its processes (when run as root)",
    "landlock": "reading solutions, checks, other submissions, other processes' /proc "
                "entries (the grader's environment); writing outside scratch; TCP; signals to "
                "processes outside the worker",
    "seccomp": "opening Internet sockets (all but AF_UNIX)",
}


@dataclass
class Policy:
    """What the grader asks the worker to do to itself (plain data: it crosses as JSON)."""

    scratch_dir: str
    read_paths: list[str] = field(default_factory=list)
    write_paths: list[str] = field(default_factory=list)
    cgroup_dir: str | None = None
    address_space_bytes: int | None = 2 << 30  # beyond the worker with torch imported
    cpu_seconds: int = 600
    file_size_bytes: int = 64 << 20
    open_files: int = 256
    processes: int = 64
    disk_bytes: int | None = None  # the scratch folder's size (a tmpfs), None: no disk layer
    uid: int | None = None
    gid: int | None = None
    network: bool = True
    landlock: bool = True
    seccomp: bool = True


_libc = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


# --- the layers -------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
MNT_DETACH = 2
DISK_INODES = 16384  # files and folders in the tmpfs (inodes are memory the size leaves out)
SCRATCH_SHM = "shm"  # the scratch folder's sub-folder that the worker sees as /dev/shm


def join_cgroup(cgroup_dir: str) -> None:
    with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as handle:
        handle.write(str(os.getpid()))


def die_with_parent() -> None:
    _check(libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if os.getppid() == 1:  # the grader is already gone
        os._exit(1)


def enter_namespaces(*, network: bool, mounts: bool) -> None:
    """A new network namespace and/or a private mount namespace. Root needs nothing more; an
    ordinary user gets them inside a new user namespace that maps only its own uid and gid."""
    flags = (CLONE_NEWNET if network else 0) | (CLONE_NEWNS if mounts else 0)
    if os.geteuid() == 0:
        _check(libc().unshare(flags), "unshare")
        return
    uid, gid = os.geteuid(), os.getegid()
    _check(libc().unshare(CLONE_NEWUSER | flags), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


def _mount(source: str | None, target: str, kind: str | None, flags: int,
           options: str | None = None) -> None:
    mount = libc().mount
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                      ctypes.c_char_p]
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _check(mount(encode(source), encode(target), encode(kind), flags, encode(options)),
           f"mount({target})")


def _copy_tree(source_fd: int, target: str, owner: tuple[int, int] | None) -> None:
    """Copy a folder (given by an open descriptor) into `target`: links as links."""
    for entry in os.scandir(source_fd):
        destination = os.path.join(target, entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.name, dir_fd=source_fd), destination)
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(destination, 0o755)
            child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                            dir_fd=source_fd)
            try:
                _copy_tree(child, destination, owner)
            finally:
                os.close(child)
        elif entry.is_file(follow_symlinks=False):
            reader = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=source_fd)
            try:
                with open(destination, "wb") as handle:
                    while chunk := os.read(reader, 1 << 20):
                        handle.write(chunk)
            finally:
                os.close(reader)
        else:
            continue
        if owner is not None:
            os.lchown(destination, *owner)


def budget_disk(scratch_dir: str, size: int, owner: tuple[int, int] | None) -> None:
    """Make the scratch folder a tmpfs of `size` bytes holding what it held (the copy of the
    submission), and show its `shm` sub-folder as /dev/shm: every file the submission writes
    then shares that one budget, and they all vanish with the worker's mount namespace. Needs
    a private mount namespace (`enter_namespaces(mounts=True)`)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here shows outside
    original = os.open(scratch_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        options = f"size={size},nr_inodes={DISK_INODES},mode=0755"
        if owner is not None:
            options += f",uid={owner[0]},gid={owner[1]}"
        _mount("tmpfs", scratch_dir, "tmpfs", MS_NOSUID | MS_NODEV, options)
        try:
            _copy_tree(original, scratch_dir, owner)
            shm = os.path.join(scratch_dir, SCRATCH_SHM)
            os.mkdir(shm, 0o755)
            if owner is not None:
                os.lchown(shm, *owner)
            if os.path.isdir("/dev/shm"):
                _mount(shm, "/dev/shm", None, MS_BIND)
        except OSError:
            libc().umount2(scratch_dir.encode(), MNT_DETACH)  # back to the copy on disk
            raise
    finally:
        os.close(original)


def set_limits(policy: Policy) -> None:
    limits = [(resource.RLIMIT_CPU, policy.cpu_seconds),
              (resource.RLIMIT_FSIZE, policy.file_size_bytes),
              (resource.RLIMIT_NOFILE, policy.open_files),
              (resource.RLIMIT_CORE, 0),
              (resource.RLIMIT_NPROC, policy.processes)]
    if policy.address_space_bytes:
        # a budget on top of what the worker is now, plus room for importing torch if a fresh
        # process has not yet (a zygote's child has)
        import sys

        with open("/proc/self/statm") as handle:
            current = int(handle.read().split()[0]) * resource.getpagesize()
        allowance = 0 if "torch" in sys.modules else TORCH_IMPORT_BYTES
        limits.append((resource.RLIMIT_AS, current + allowance + policy.address_space_bytes))
    for kind, value in limits:
        soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))
    # Past the file-size limit a write fails (OSError) instead of killing the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


# Landlock (see linux/landlock.h). Syscall numbers are the same on x86_64 and aarch64.
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ALL_ABI1 = (1 << 13) - 1
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1


_pinned: list[int] = []  # descriptors that keep /proc rules matching (see confine_filesystem)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: unavailable)."""
    try:
        version = libc().syscall(_LANDLOCK_CREATE_RULESET, None, 0, 1)
    except (AttributeError, OSError):
        return 0
    return max(int(version), 0)


def confine_filesystem(read_paths: list[str], write_paths: list[str]) -> int:
    """Allow reading `read_paths`, reading and writing `write_paths`, and nothing else; with
    newer kernels also no TCP and no signals outside. Returns the ABI used."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    handled_fs = _FS_ALL_ABI1
    if abi >= 2:
        handled_fs |= _FS_REFER
    if abi >= 3:
        handled_fs |= _FS_TRUNCATE
    handled_net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("Q", handled_fs)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(libc().syscall(_LANDLOCK_CREATE_RULESET, buffer, len(attr), 0),
                     "landlock_create_ruleset")
    read_rights = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    file_rights = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    try:
        for paths, rights in ((read_paths, read_rights), (write_paths, handled_fs)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # a path that does not exist needs no rule
                try:
                    allowed = rights if os.path.isdir(path) else rights & file_rights
                    rule = ctypes.create_string_buffer(struct.pack("=Qi", allowed, fd), 12)
                    _check(libc().syscall(_LANDLOCK_ADD_RULE, ruleset, 1, rule, 0),
                           f"landlock_add_rule({path})")
                finally:
                    if path.startswith("/proc/"):
                        # procfs makes a new inode for /proc/<pid> when its dentry is evicted
                        # (memory pressure), and the rule would stop matching: an open
                        # descriptor keeps the dentry, so the worker keeps its own entries.
                        _pinned.append(fd)
                    else:
                        os.close(fd)
        _check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        _check(libc().syscall(_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


# seccomp: a classic BPF program allowing socket() only for AF_UNIX.
_ARCHES = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_EACCES = 13


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def deny_inet_sockets() -> None:
    machine = platform.machine()
    if machine not in _ARCHES:
        raise OSError(f"no seccomp filter for {machine}")
    audit_arch, socket_nr, io_uring_setup_nr = _ARCHES[machine]
    load, equal, at_least, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = _SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO | _EACCES
    # jt/jf count instructions to skip: index i jumps to i + 1 + offset.
    program = b"".join([
        _bpf(load, 0, 0, 4),                       # 0: A = arch
        _bpf(equal, 0, 6, audit_arch),             # 1: another arch -> allow (8)
        _bpf(load, 0, 0, 0),                       # 2: A = syscall number
        _bpf(at_least, 5, 0, 0x40000000),          # 3: x32 syscalls -> deny (9)
        _bpf(equal, 4, 0, io_uring_setup_nr),      # 4: io_uring can open sockets -> deny (9)
        _bpf(equal, 0, 2, socket_nr),              # 5: not socket() -> allow (8)
        _bpf(load, 0, 0, 16),                      # 6: A = socket's family argument
        _bpf(equal, 0, 1, 1),                      # 7: AF_UNIX -> allow (8), else deny (9)
        _bpf(ret, 0, 0, allow),                    # 8
        _bpf(ret, 0, 0, deny),                     # 9
    ])
    filters = ctypes.create_string_buffer(program, len(program))
    fprog = ctypes.create_string_buffer(struct.pack("HP", len(program) // 8,
                                                    ctypes.addressof(filters)))
    _check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    _check(libc().prctl(PR_SET_SECCOMP, 2, fprog, 0, 0), "prctl(SECCOMP)")


def wait_gone(pid: int, seconds: float = 2.0) -> None:
    """Wait (a bounded time) until a killed, self-reaping child has left /proc: only then are
    its own children re-parented to this subreaper, where `kill_adopted` finds them."""
    import time

    deadline = time.monotonic() + seconds
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.002)


def kill_adopted(token: str, group: int, *, reap: bool) -> None:
    """Kill what a finished worker left behind among this process's (adopted) children: those
    in the worker's process group or carrying its token in their environment. Used by a child
    subreaper (the grader or the zygote), so escaped forks cannot outlive grading."""
    marker = f"TORCH_GRADER_WORKER={token}".encode()
    for _ in range(3):
        strays = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                if int(fields[1]) != os.getpid():
                    continue
                environ = b""
                if int(fields[2]) != group:
                    with open(f"/proc/{entry}/environ", "rb") as handle:
                        environ = handle.read()
                if int(fields[2]) == group or marker in environ:
                    strays.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        if not strays:
            return
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
                if reap:
                    os.waitpid(pid, 0)
            except (OSError, ChildProcessError):
                pass


# --- all together -----------------------------------------------------------------------------


def apply(policy: Policy) -> dict[str, str]:
    """Apply every layer the policy asks for; returns {layer: "active" or why not}."""
    report: dict[str, str] = {}

    def attempt(layer: str, wanted: bool, action, reason_off: str = "not requested") -> None:  # noqa: ANN001
        if not wanted:
            report[layer] = f"off: {reason_off}"
            return
        try:
            action()
            report[layer] = ACTIVE
        except Exception as error:  # noqa: BLE001 - every layer degrades on its own
            report[layer] = f"unavailable: {error}"

    attempt("cgroup", policy.cgroup_dir is not None,
            lambda: join_cgroup(policy.cgroup_dir), "no writable pids cgroup")
    attempt("orphans", True, die_with_parent)
    # Namespaces: network and mounts in one go where possible (one user namespace for both
    # when not root), else each on its own.
    wants_disk = policy.disk_bytes is not None
    mounts = False
    if policy.network and wants_disk:
        try:
            enter_namespaces(network=True, mounts=True)
            report["network"], mounts = ACTIVE, True
        except OSError:
            pass
    if "network" not in report:
        attempt("network", policy.network, lambda: enter_namespaces(network=True, mounts=False))
    if wants_disk and not mounts:
        try:
            enter_namespaces(network=False, mounts=True)
            mounts = True
        except OSError as error:
            report["disk"] = f"unavailable: {error}"
    owner = (policy.uid, policy.gid) if policy.uid is not None and os.geteuid() == 0 else None
    if "disk" not in report:
        attempt("disk", wants_disk,
                lambda: budget_disk(policy.scratch_dir, policy.disk_bytes, owner),
                "no disk budget")
    attempt("limits", True, lambda: set_limits(policy))
    attempt("uid", policy.uid is not None and os.geteuid() == 0,
            lambda: drop_privileges(policy.uid, policy.gid),
            "not root" if os.geteuid() != 0 else "the Python installation is not readable by "
            "another user")
    if report.get("uid") == ACTIVE:
        attempt("orphans", True, die_with_parent)  # a uid change clears the death signal
    attempt("landlock", policy.landlock,
            lambda: confine_filesystem(policy.read_paths, policy.write_paths))
    attempt("seccomp", policy.seccomp, deny_inet_sockets)
    return report
