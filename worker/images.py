"""A run's image that the engine lacks, pulled from the registry the image
names, by the worker's policy and with its registry credentials.

A pull can take minutes, so it happens before a run is armed (outside the
arming slots) and in threads of its own: other runs arm and release while
it goes on. Runs that need an image being pulled wait on that one pull.
Images known to be here are remembered, so a run whose image was found or
pulled before costs no engine call; a container create that finds the image
gone (removed behind the worker's back) makes it be looked for again.

Policies (``CRONFLEET_IMAGE_PULL_POLICY``): ``if_not_present`` (default)
pulls only an image not here; ``always`` asks the registry before every run
(runs due together share one pull) and warm containers of an older image of
that name are not used; ``never`` pulls nothing (a missing image is
``image_not_found``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker.auth
import docker.errors
import docker.utils
import requests.exceptions
import structlog

from cronfleet import metrics
from cronfleet.aio import within
from cronfleet.config import Settings
from worker.runtime import RunRejected

log = structlog.get_logger()
PULL_POLICIES = ("if_not_present", "always", "never")
# A failed pull's answer is given to the runs that need the image in the
# next seconds without asking the registry again (a job firing every second
# with a bad image name would otherwise ask once a second).
FAILURE_KEPT = 10.0
DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/")


def registry_of(image: str) -> str:
    """The registry an image reference names: ``127.0.0.1:5000`` for
    ``127.0.0.1:5000/team/app:1``, ``docker.io`` for ``node:20``."""
    repository, _ = docker.utils.parse_repository_tag(image)
    registry, _ = docker.auth.resolve_repository_name(repository)
    return str(registry)


def parse_registry_auth(text: str) -> dict[str, dict[str, str]]:
    """``REGISTRY=USER:PASSWORD`` pairs, comma-separated, as Docker auth configs
    by registry. The password is everything after the user's first colon."""
    found: dict[str, dict[str, str]] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        registry, eq, credentials = pair.partition("=")
        user, colon, password = credentials.partition(":")
        if not (eq and colon and registry.strip() and user):
            raise ValueError("setting registry_auth: each entry must be REGISTRY=USER:PASSWORD")
        registry = registry.strip()
        registry = DOCKER_HUB if registry in DOCKER_HUB_ALIASES else registry
        found[registry] = {"username": user, "password": password, "serveraddress": registry}
    return found


class ImagePulls:
    """The worker's images: which are here, and the pulls under way."""

    def __init__(self, client: docker.DockerClient, settings: Settings) -> None:
        if settings.image_pull_policy not in PULL_POLICIES:
            raise ValueError(
                f"setting image_pull_policy: {settings.image_pull_policy!r} is not one of "
                + ", ".join(PULL_POLICIES)
            )
        self.client = client
        self.policy = settings.image_pull_policy
        self.timeout = settings.image_pull_timeout_seconds
        self._auth = parse_registry_auth(settings.registry_auth)
        self._auth_file = (
            docker.auth.load_config(settings.registry_auth_file) if settings.registry_auth_file else None
        )
        # A pull streams for as long as the registry takes: threads of its
        # own, so engine calls of runs being armed never queue behind one.
        self._threads = ThreadPoolExecutor(4, thread_name_prefix="docker-pull")
        self._here: dict[str, str] = {}  # image reference -> image id, known to be here
        self._pulls: dict[str, asyncio.Task[str]] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # image -> (when, the error)
        # Told when an image is found here or pulled (the warm pool waits for it).
        self.arrived: Callable[[str], None] = lambda image: None

    def image_id(self, image: str) -> str | None:
        """The id of ``image`` as last found or pulled here."""
        return self._here.get(image)

    def ready(self, image: str) -> bool:
        """Whether containers of ``image`` can be made now (the warm pool asks).
        An image not known to be here is looked for, or pulled, in the
        background, and the pool is told when it lands."""
        if image in self._here or self.policy == "never":
            return True
        if image not in self._pulls and not self._failed_recently(image):
            task = asyncio.get_running_loop().create_task(self.ensure(image))
            task.add_done_callback(_quietly)
        return False

    def forget(self, image: str) -> None:
        """The engine said ``image`` is not here (it was removed): look again next time."""
        self._here.pop(image, None)

    async def ensure(self, image: str) -> bool:
        """Make ``image`` here by the policy; True if this waited for a pull.

        Raises:
            RunRejected: ``image_pull_failed: IMAGE: ANSWER`` (the registry's or
                the engine's answer, or the timeout).
        """
        if self.policy == "never":
            return False
        if self.policy == "if_not_present":
            if image in self._here:
                return False
            if image not in self._pulls and await self._look(image):
                return False
        await self.pull(image)
        return True

    async def pull(self, image: str) -> str:
        """Pull ``image`` (joining a pull of it under way); its id."""
        failed = self._failed_recently(image)
        if failed is not None:
            raise RunRejected(f"image_pull_failed: {image}: {failed}")
        task = self._pulls.get(image)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._pull(image))
            self._pulls[image] = task
            task.add_done_callback(functools.partial(self._pull_done, image))
        # Shielded: a run cancelled while it waits does not cancel the pull
        # the others wait on.
        return await asyncio.shield(task)

    def _pull_done(self, image: str, task: asyncio.Task[str]) -> None:
        if self._pulls.get(image) is task:
            del self._pulls[image]
        _quietly(task)

    def _failed_recently(self, image: str) -> str | None:
        failed = self._failed.get(image)
        if failed is None:
            return None
        at, error = failed
        if time.monotonic() - at > FAILURE_KEPT:
            del self._failed[image]
            return None
        return error

    async def _look(self, image: str) -> bool:
        """False only when the engine says it has no ``image`` (found: remembered)."""
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(self._threads, self.client.images.get, image)
        except docker.errors.ImageNotFound:
            return False
        except (docker.errors.APIError, requests.exceptions.RequestException):
            # Not known either way: no pull now (the registry may not be the
            # trouble); if the image is missing, the create finds it and pulls.
            return True
        self._here[image] = str(found.id)
        self.arrived(image)
        return True

    async def _pull(self, image: str) -> str:
        registry = registry_of(image)
        started = time.monotonic()
        log.info("image_pull_started", image=image, registry=registry, policy=self.policy)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._threads, self._pull_blocking, image, self._credentials(registry))
        try:
            image_id = await within(work, self.timeout)
        except TimeoutError:
            error = f"no answer within {self.timeout:g}s"
        except _PullError as exc:
            error = str(exc)
        else:
            self._here[image] = image_id
            self._failed.pop(image, None)
            metrics.IMAGE_PULLS.labels("pulled").inc()
            metrics.IMAGE_PULL_DURATION.observe(time.monotonic() - started)
            log.info("image_pulled", image=image, seconds=round(time.monotonic() - started, 3))
            self.arrived(image)
            return image_id
        metrics.IMAGE_PULLS.labels("failed").inc()
        metrics.IMAGE_PULL_DURATION.observe(time.monotonic() - started)
        self._failed[image] = (time.monotonic(), error)
        log.warning("image_pull_failed", image=image, registry=registry, error=error)
        raise RunRejected(f"image_pull_failed: {image}: {error}")

    def _credentials(self, registry: str) -> dict[str, str] | None:
        found = self._auth.get(registry)
        if found is None and self._auth_file is not None:
            resolved = docker.auth.resolve_authconfig(self._auth_file, registry)
            found = dict(resolved) if resolved else None
        return found

    def _pull_blocking(self, image: str, auth: dict[str, str] | None) -> str:
        """Pull through the engine, reading its progress stream to the end: a
        failure the registry answers mid-pull arrives there as an ``error``."""
        repository, tag = docker.utils.parse_repository_tag(image)
        try:
            for message in self.client.api.pull(
                repository, tag=tag, stream=True, decode=True, auth_config=auth
            ):
                if isinstance(message, dict) and message.get("error"):
                    raise _PullError(str(message["error"]).strip())
            return str(self.client.images.get(image).id)
        except docker.errors.APIError as exc:
            raise _PullError(str(exc.explanation or exc).strip()) from exc
        except requests.exceptions.RequestException as exc:
            raise _PullError(f"engine unreachable: {exc}") from exc

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


class _PullError(Exception):
    """What the registry (or the engine) answered to a pull."""


def _quietly(task: asyncio.Future[Any]) -> None:
    """Mark a background task's failure as seen (each waiter got it already)."""
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()
