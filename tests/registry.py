"""A Docker registry on loopback for the image-pull tests: Debian's
``docker-registry`` (the distribution registry) as a subprocess, plain HTTP
(the engine treats 127.0.0.0/8 registries as insecure), optionally behind
htpasswd basic auth; and images pushed to it from the local runner image.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import docker
import docker.errors

from launch.devservices import free_port

RUNNER_IMAGE = "cronfleet/runner:busybox"  # deploy/runner-image.sh


class LocalRegistry:
    def __init__(self, root: Path, user: str = "", password: str = "") -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.user, self.password = user, password
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def auth(self) -> dict[str, str] | None:
        return {"username": self.user, "password": self.password} if self.user else None

    def start(self) -> None:
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise RuntimeError("no docker-registry (Debian's docker-registry package; make system-deps)")
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.user:
            hashed = subprocess.run(
                ["htpasswd", "-Bbn", self.user, self.password], check=True, capture_output=True, text=True
            ).stdout
            (self.root / "htpasswd").write_text(hashed)
            auth = f"auth:\n  htpasswd:\n    realm: cronfleet-test\n    path: {self.root / 'htpasswd'}\n"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n" + auth
        )
        log = (self.root / "registry.log").open("wb")
        self._process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"registry exited: {(self.root / 'registry.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # 401: up, and asking for credentials
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"registry on {self.address} did not answer")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def push_runner(self, client: docker.DockerClient, name: str = "cronfleet-test/pulled") -> str:
        """The runner image pushed here under a new tag, the local tag then
        removed (the engine no longer has the reference); the reference."""
        repository, tag = f"{self.address}/{name}", uuid.uuid4().hex[:12]
        reference = f"{repository}:{tag}"
        client.images.get(RUNNER_IMAGE).tag(repository, tag)
        try:
            for message in client.api.push(repository, tag, stream=True, decode=True, auth_config=self.auth):
                if isinstance(message, dict) and message.get("error"):
                    raise RuntimeError(f"push of {reference} failed: {message['error']}")
        finally:
            client.images.remove(reference)
        return reference


def remove_local(client: docker.DockerClient, reference: str) -> None:
    """Untag what a test pulled (the runner image's layers stay with it)."""
    try:
        client.images.remove(reference)
    except docker.errors.ImageNotFound:
        pass


def present(client: docker.DockerClient, reference: str) -> bool:
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True
