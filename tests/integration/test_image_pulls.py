"""Image pulls against a registry on loopback (tests.registry): a run's image
the engine lacks is pulled by the worker's policy, with its credentials; a
pull that fails names the image and the registry's answer; a pull under way
holds up no other run, and runs that need the same image share it."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import docker
import pytest

from cronfleet.config import Settings
from tests.helpers import assert_eventually
from tests.registry import LocalRegistry, present, remove_local
from worker.docker_claims import LABEL
from worker.docker_runtime import DockerRuntime
from worker.images import parse_registry_auth, registry_of
from worker.runtime import RunOutcome, RunRejected, RunSpec

pytestmark = pytest.mark.integration
_ids = itertools.count(1)


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
async def make_runtime(
    tmp_path: Path, engine: docker.DockerClient
) -> AsyncIterator[Callable[..., DockerRuntime]]:
    """DockerRuntimes with settings changed as a test asks; their containers
    and the images the tests pulled are removed afterwards."""
    made: list[DockerRuntime] = []

    def make(**changes: object) -> DockerRuntime:
        fields = {"state_dir": str(tmp_path), "kill_grace_seconds": 1, "pool_floor": 0} | changes
        settings = dataclasses.replace(Settings(), **fields)  # type: ignore[arg-type]
        rt = DockerRuntime(settings, f"test-{uuid.uuid4().hex[:8]}")
        made.append(rt)
        return rt

    yield make
    for rt in made:
        await rt.close()
        for c in engine.containers.list(all=True, filters={"label": f"{LABEL}.worker_id={rt.worker_id}"}):
            c.remove(force=True)
        for image in list(rt.images._here):
            if image.startswith("127.0.0.1:"):
                remove_local(engine, image)


def spec(tmp_path: Path, image: str, command: str = "echo pulled") -> RunSpec:
    n = next(_ids)
    return RunSpec(
        execution_id=n,
        job_id="job",
        attempt=1,
        command=command,
        image=image,
        timeout_seconds=30,
        spool=tmp_path / f"run{n}" / "out.log",
    )


async def run(rt: DockerRuntime, s: RunSpec) -> tuple[bool, RunOutcome, str]:
    """As the worker does (worker.lifecycle): the image first, then arm and release."""
    pulled = await rt.prepare(s)
    armed = await rt.arm(s)
    await armed.release()
    outcome = await armed.wait()
    return pulled, outcome, s.spool_path.read_text()


def test_the_registry_an_image_names() -> None:
    assert registry_of("node:20") == "docker.io"
    assert registry_of("127.0.0.1:5000/team/app:1") == "127.0.0.1:5000"
    assert registry_of("registry.example.com/app@sha256:" + "a" * 64) == "registry.example.com"
    assert parse_registry_auth("r.example.com:5000=bot:pa:ss, index.docker.io=me:tok") == {
        "r.example.com:5000": {"username": "bot", "password": "pa:ss", "serveraddress": "r.example.com:5000"},
        "docker.io": {"username": "me", "password": "tok", "serveraddress": "docker.io"},
    }
    with pytest.raises(ValueError, match="REGISTRY=USER:PASSWORD"):
        parse_registry_auth("r.example.com=nopassword")


async def test_an_image_the_worker_lacks_is_pulled_and_the_run_succeeds(
    make_runtime: Callable[..., DockerRuntime],
    registry: LocalRegistry,
    engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    image = registry.push_runner(engine)
    assert not present(engine, image)
    rt = make_runtime()
    pulled, outcome, out = await run(rt, spec(tmp_path, image))
    assert pulled and (outcome.status, out) == ("succeeded", "pulled\n"), outcome
    assert present(engine, image)
    # Here now: the next run of it pulls nothing (and asks the engine nothing).
    again, outcome, _ = await run(rt, spec(tmp_path, image))
    assert not again and outcome.status == "succeeded"


async def test_a_missing_image_fails_naming_it_and_the_registry_answer(
    make_runtime: Callable[..., DockerRuntime], registry: LocalRegistry, tmp_path: Path
) -> None:
    image = f"{registry.address}/cronfleet-test/absent:{uuid.uuid4().hex[:8]}"
    rt = make_runtime()
    with pytest.raises(RunRejected) as failed:
        await rt.prepare(spec(tmp_path, image))
    assert str(failed.value).startswith(f"image_pull_failed: {image}: ")
    assert "manifest unknown" in str(failed.value), failed.value


async def test_policy_never_fails_without_pulling(
    make_runtime: Callable[..., DockerRuntime],
    registry: LocalRegistry,
    engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    image = registry.push_runner(engine)
    rt = make_runtime(image_pull_policy="never")
    s = spec(tmp_path, image)
    assert await rt.prepare(s) is False
    with pytest.raises(RunRejected, match=f"image_not_found: {image}"):
        await rt.arm(s)
    assert not present(engine, image)


async def test_policy_always_asks_the_registry_before_every_run(
    make_runtime: Callable[..., DockerRuntime],
    registry: LocalRegistry,
    engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    image = registry.push_runner(engine)
    rt = make_runtime(image_pull_policy="always")
    for _ in range(2):
        pulled, outcome, _ = await run(rt, spec(tmp_path, image))
        assert pulled and outcome.status == "succeeded"


async def test_a_private_registry_takes_the_worker_credentials(
    make_runtime: Callable[..., DockerRuntime],
    private_registry: LocalRegistry,
    engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    image = private_registry.push_runner(engine)
    anonymous = make_runtime()
    with pytest.raises(RunRejected, match=f"image_pull_failed: {image}: .*no basic auth credentials"):
        await anonymous.prepare(spec(tmp_path, image))

    pairs = f"{private_registry.address}={private_registry.user}:{private_registry.password}"
    rt = make_runtime(registry_auth=pairs)
    pulled, outcome, _ = await run(rt, spec(tmp_path, image))
    assert pulled and outcome.status == "succeeded"
    remove_local(engine, image)

    # Or a Docker config.json, as `docker login` writes it.
    token = base64.b64encode(f"{private_registry.user}:{private_registry.password}".encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {private_registry.address: {"auth": token}}}))
    from_file = make_runtime(registry_auth_file=str(config))
    pulled, outcome, _ = await run(from_file, spec(tmp_path, image))
    assert pulled and outcome.status == "succeeded"


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """A registry address that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


async def test_a_pull_under_way_holds_up_no_other_run_and_is_shared(
    make_runtime: Callable[..., DockerRuntime], silent_registry: str, tmp_path: Path
) -> None:
    rt = make_runtime(image_pull_timeout_seconds=4)
    image = f"{silent_registry}/cronfleet-test/slow:1"
    started = time.monotonic()
    waiting = [asyncio.ensure_future(rt.prepare(spec(tmp_path, image))) for _ in range(3)]
    await asyncio.sleep(0.2)
    assert len(rt.images._pulls) == 1, "three runs of one image: one pull"

    # Meanwhile a run of an image that is here arms, runs and ends.
    _, outcome, out = await run(rt, spec(tmp_path, rt.settings.docker_image, "echo meanwhile"))
    assert (outcome.status, out) == ("succeeded", "meanwhile\n")
    assert not any(w.done() for w in waiting), "the pull is still under way"

    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, RunRejected) for r in results), results
    assert {str(r) for r in results} == {f"image_pull_failed: {image}: no answer within 4s"}
    assert 3.9 < time.monotonic() - started < 15


async def test_the_warm_pool_fills_once_its_image_is_pulled(
    make_runtime: Callable[..., DockerRuntime], registry: LocalRegistry, engine: docker.DockerClient
) -> None:
    image = registry.push_runner(engine)
    rt = make_runtime(docker_image=image, pool_floor=2)
    stop = asyncio.Event()

    async def quiet() -> None:
        return None

    warming = asyncio.ensure_future(rt.keep_warm(stop, quiet))
    try:

        async def warm() -> bool:
            return rt.pool.idle(rt.pool.default) == 2

        await assert_eventually(warm, timeout=30, what="two warm containers of the pulled image")
        assert present(engine, image)
    finally:
        stop.set()
        await warming


def test_an_unknown_policy_is_refused_naming_the_setting(tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings(), state_dir=str(tmp_path), image_pull_policy="sometimes")
    with pytest.raises(ValueError, match="image_pull_policy: 'sometimes' is not one of if_not_present"):
        DockerRuntime(settings, "test-policy")
