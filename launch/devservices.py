"""Local Postgres and etcd servers on loopback, for `cronfleet up` and tests.

Postgres comes from the machine's binaries (Debian's postgresql package);
when running as root it runs as the ``postgres`` user, which refuses root.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

FIRST_PICKED_PORT = 10_000


def free_port() -> int:
    """A loopback port free now, for a server that binds it later. Picked
    below the kernel's ephemeral range: a port from that range (what a bind
    to port 0 gives) can meanwhile become any outgoing connection's source
    port, and a suite's gateway once found its port held that way by a
    long-lived connection, every restart refused."""
    low = _ephemeral_range_start()
    for _ in range(200):
        port = random.randrange(FIRST_PICKED_PORT, low)
        if port_is_free(port):
            return port
    with socket.socket() as s:  # a crowded machine: what the kernel gives
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ephemeral_range_start() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return max(low, FIRST_PICKED_PORT + 1000)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package (make deps)")
    return candidates[-1]


class LocalPostgres:
    """A throwaway or persistent Postgres cluster in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True, options: str = "") -> None:
        """``options``: more server settings, as ``-c name=value ...``."""
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.durable = durable
        self.options = options
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True)

    def start(self) -> str:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            # The postgres user must be able to reach its data directory.
            for parent in [self.data_dir.parent, *self.data_dir.parent.parents]:
                if parent.exists() and not os.stat(parent).st_mode & 0o001:
                    os.chmod(parent, os.stat(parent).st_mode | 0o711)
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self._as_postgres:
                os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
            self._run(
                _pg_bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} "
            "-c max_connections=300 -c shared_buffers=256MB"
        )
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        if self.options:
            opts += f" {self.options}"
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-o",
            opts,
            "-w",
            "-l",
            str(self.data_dir / "server.log"),
            "start",
        )
        return self.url

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                tmpl = f' TEMPLATE "{template}"' if template else ""
                conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        return self.url_for(name)

    def stop(self) -> None:
        """A fast shutdown; if that fails (a loaded machine, a server the chaos
        suite killed and restarted), an immediate one, then SIGKILL."""
        pid_file = self.data_dir / "postmaster.pid"
        for mode in ("fast", "immediate"):
            if not pid_file.exists():
                return
            try:
                self._run(_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-t", "30", "-w", "stop")
                return
            except subprocess.CalledProcessError:
                continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


class LocalEtcd:
    """One etcd member on loopback: alone, or one of a :class:`LocalEtcdCluster`."""

    def __init__(
        self,
        data_dir: Path,
        client_port: int,
        peer_port: int,
        *,
        name: str = "cronfleet",
        initial_cluster: str = "",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.client_port = client_port
        self.peer_port = peer_port
        self.name = name
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self, wait: bool = True) -> str:
        binary = shutil.which("etcd") or "/usr/bin/etcd"
        if not os.path.exists(binary):
            raise RuntimeError("etcd not found: install Debian's etcd-server package (make deps)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        client = f"http://127.0.0.1:{self.client_port}"
        log = open(self.data_dir / "etcd.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [
                binary,
                "--name",
                self.name,
                "--data-dir",
                str(self.data_dir / "data"),
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                self.peer_url,
                "--initial-advertise-peer-urls",
                self.peer_url,
                "--initial-cluster",
                self.initial_cluster,
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        if wait:
            wait_for(self.healthy, 20, "etcd")
        return self.endpoint

    def healthy(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise RuntimeError(f"etcd exited with {self.proc.returncode}; see {self.data_dir}/etcd.log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=1)
            conn.request("GET", "/health")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash would (its data stays; start() brings it back)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class LocalEtcdCluster:
    """``size`` etcd members on loopback forming one cluster (a quorum
    survives one member's death when there are three)."""

    def __init__(self, data_dir: Path, size: int, first_client_port: int | None = None) -> None:
        ports = [(free_port(), free_port()) for _ in range(size)]
        if first_client_port is not None:
            ports[0] = (first_client_port, ports[0][1])
        names = [f"etcd-{i + 1}" for i in range(size)]
        initial = ",".join(f"{n}=http://127.0.0.1:{peer}" for n, (_, peer) in zip(names, ports, strict=True))
        self.members = [
            LocalEtcd(Path(data_dir) / n, client, peer, name=n, initial_cluster=initial)
            for n, (client, peer) in zip(names, ports, strict=True)
        ]

    @property
    def endpoints(self) -> str:
        return ",".join(m.endpoint for m in self.members)

    def start(self) -> str:
        for member in self.members:  # each waits for the others to form a quorum
            member.start(wait=False)
        wait_for(lambda: all(m.healthy() for m in self.members), 30, "etcd cluster")
        return self.endpoints

    def stop(self) -> None:
        for member in self.members:
            member.stop()
