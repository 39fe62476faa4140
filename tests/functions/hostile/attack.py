"""The attacks of the hostile test function: one per event "try"; prints a JSON outcome."""

import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

EVENT = json.load(sys.stdin)
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long


def outcome(fn):
    """'ok' or the error's errno name."""
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def raw(nr, *args):
    """A raw syscall: 'ok' or its errno name."""
    ret = LIBC.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if ret < 0:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return "ok"


def ps():
    return {"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}


def net():
    def connect(host, port):
        def go():
            with socket.create_connection((host, port), timeout=2):
                pass
        return outcome(go)

    port = EVENT["port"]
    curl = subprocess.run(
        ["curl", "-sS", "-m", "3", "--noproxy", "*", "http://1.1.1.1/"],
        capture_output=True, text=True, check=False)
    with open("/proc/net/dev") as f:
        interfaces = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    return {
        "interfaces": interfaces,
        "host_loopback": connect("127.0.0.1", port),
        "internet": connect("1.1.1.1", 80),
        "curl_internet_rc": curl.returncode,
        "own_runtime_api": connect("127.0.0.1", 9001),
    }


def write():
    def go(path):
        def w():
            with open(path, "w") as f:
                f.write("pwned")
        return w
    return {p: outcome(go(p)) for p in EVENT["paths"]}


def read():
    return {p: outcome(lambda p=p: os.listdir(p) if os.path.isdir(p) else open(p).close())
            for p in EVENT["paths"]}


def fork_bomb():
    children = []
    error = None
    while len(children) < 5000:
        try:
            pid = os.fork()
        except OSError as e:
            error = errno.errorcode.get(e.errno)
            break
        if pid == 0:
            try:
                os.execv("/usr/bin/sleep", ["sleep", "60"])
            finally:
                os._exit(1)
        children.append(pid)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    for pid in children:
        os.waitpid(pid, 0)
    return {"forked": len(children), "error": error}


def fds():
    opened = []
    try:
        while True:
            opened.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        error = errno.errorcode.get(e.errno)
    count = len(opened)
    for fd in opened:
        os.close(fd)
    return {"opened": count, "error": error}


def fill_tmp():
    written = 0
    chunk = b"x" * (1 << 20)
    error = None
    try:
        with open("/tmp/fill", "wb") as f:
            while written < (8 << 30):
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        error = errno.errorcode.get(e.errno)
    os.unlink("/tmp/fill")
    return {"written": written, "error": error}


def mem():
    hog = []
    while True:
        hog.append(bytearray(16 << 20))  # zero-filled: every page is touched


def priv():
    with open("/proc/self/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    keep = ["Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
            "Seccomp"]
    return {k: fields.get(k, "").strip() for k in keep}


def syscalls():
    # x86_64 numbers
    return {
        "unshare_user": raw(272, 0x10000000),
        "unshare_cli": subprocess.run(["unshare", "-r", "true"], capture_output=True,
                                      check=False).returncode,
        "setns": raw(308, 0, 0),
        "mount": raw(165, 0, 0, 0, 0, 0),
        "umount2": raw(166, 0, 0),
        "pivot_root": raw(155, 0, 0),
        "ptrace": raw(101, 0x4206, 1, 0, 0),  # PTRACE_SEIZE pid 1
        "bpf": raw(321, 0, 0, 0),
        "keyctl": raw(250, 0, 0, 0),
        "add_key": raw(248, 0, 0, 0, 0, 0),
        "perf_event_open": raw(298, 0, 0, 0, 0, 0),
        "userfaultfd": raw(323, 0),
        "init_module": raw(175, 0, 0, 0),
        "kexec_load": raw(246, 0, 0, 0, 0),
        "clone_newns": raw(56, 0x20000 | 17, 0, 0, 0, 0),
        "clone3": raw(435, 0, 0),
        "io_uring_setup": raw(425, 1, 0),
        "io_uring_enter": raw(426, 0, 0, 0, 0, 0, 0),
        "x32_getpid": raw(0x40000000 | 39),
        # Plain work still works: fork/exec (glibc falls back from clone3 to clone), threads.
        "subprocess": subprocess.run(["true"], check=False).returncode,
        "getpid": raw(39),
    }


def sleep():
    time.sleep(EVENT.get("seconds", 1))
    return ps()


ATTACKS = {
    "ps": ps, "net": net, "write": write, "read": read, "fork_bomb": fork_bomb, "fds": fds,
    "fill_tmp": fill_tmp, "mem": mem, "priv": priv, "syscall": syscalls, "sleep": sleep,
}

print(json.dumps(ATTACKS[EVENT["try"]]()))
