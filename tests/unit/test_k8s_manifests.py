"""deploy/k8s: each overlay renders (`kubectl kustomize`, no cluster needed)
into resources that Kubernetes' own schemas accept (kubernetes-validate,
which carries them; strict: an unknown field is an error), with the settings
cronfleet really reads, probes, requests and the coordinators' budget. The
negative cases show the checks bite."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cronfleet.config import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir())
# The oldest Kubernetes still common and the newest the validator knows.
VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
ROLES = ("coordinator", "scheduler", "worker", "gateway")
SETTINGS = {f"CRONFLEET_{f.name.upper()}" for f in dataclasses.fields(Settings) if f.name != "extra"}
# Made by hand (`cronfleet certs`), never committed: README, Kubernetes.
EXTERNAL_SECRETS = {"cronfleet-ca"}
Resource = dict[str, Any]


def render(directory: Path) -> list[Resource]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: make k8s-deps installs Debian's kubernetes-client"
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def invalid(resource: Resource, version: str = VERSIONS[-1]) -> str | None:
    """Why the schema refuses ``resource``, or None."""
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{resource['kind']}/{resource['metadata'].get('name')}: {exc.message} at {list(exc.path)}"
    return None


def named(resources: list[Resource], kind: str, name: str) -> Resource:
    return next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)


def containers(resource: Resource) -> Iterator[Resource]:
    spec = resource["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


@functools.cache
def overlay(name: str) -> list[Resource]:
    return render(K8S / "overlays" / name)


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[Resource]:
    return copy.deepcopy(overlay(request.param))


@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_resource_is_valid(version: str) -> None:
    """Each distinct resource of every overlay, once (overlays share most)."""
    distinct: dict[str, tuple[str, Resource]] = {}
    for name in OVERLAYS:
        for resource in overlay(name):
            distinct.setdefault(json.dumps(resource, sort_keys=True), (name, resource))
    problems = [f"{name}: {p}" for name, r in distinct.values() if (p := invalid(r, version))]
    assert not problems, problems


def test_the_topology_is_all_there(rendered: list[Resource]) -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for r in rendered}
    assert {("Deployment", role) for role in ROLES} <= kinds
    assert named(rendered, "StatefulSet", "etcd")["spec"]["replicas"] == 3
    assert ("Service", "postgres") in kinds, "in the cluster or an external name"
    assert {("ConfigMap", "cronfleet-config"), ("Secret", "cronfleet-secrets")} <= kinds
    assert ("Service", "gateway") in kinds
    assert all(r["metadata"].get("namespace") == "cronfleet" for r in rendered if r["kind"] != "Namespace")
    budget = named(rendered, "PodDisruptionBudget", "coordinator")
    labels = named(rendered, "Deployment", "coordinator")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert named(rendered, "Deployment", "coordinator")["spec"]["replicas"] >= 2


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_probed_and_asks_for_resources(rendered: list[Resource], role: str) -> None:
    [main] = [c for c in containers(named(rendered, "Deployment", role)) if c["name"] == role]
    ports = {p["name"] for p in main["ports"]}
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # The gateway answers both on its API port, every other role on its metrics port.
    port = "http" if role == "gateway" else "metrics"
    assert main["livenessProbe"]["httpGet"]["port"] == main["readinessProbe"]["httpGet"]["port"] == port
    assert port in ports
    assert {"cpu", "memory"} <= set(main["resources"]["requests"])


def test_every_setting_named_is_one_cronfleet_reads(rendered: list[Resource]) -> None:
    named_settings = set(re.findall(r"\bCRONFLEET_[A-Z0-9_]+", yaml.safe_dump_all(rendered)))
    assert named_settings, "no settings at all?"
    assert named_settings <= SETTINGS, sorted(named_settings - SETTINGS)


def test_every_config_and_secret_referenced_exists(rendered: list[Resource]) -> None:
    have = {(r["kind"], r["metadata"]["name"]) for r in rendered}
    secrets = {r["metadata"]["name"]: r for r in rendered if r["kind"] == "Secret"}
    for workload in (r for r in rendered if r["kind"] in ("Deployment", "StatefulSet")):
        for c in containers(workload):
            for source in c.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in have
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], f"{ref} in {c['name']}"
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in {*secrets, *EXTERNAL_SECRETS}


def kustomization_files(directory: Path) -> set[Path]:
    """The files a kustomization names, each checked to exist."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    listed: set[Path] = set()
    for entry in [*k.get("resources", []), *k.get("bases", []), *k.get("patchesStrategicMerge", [])]:
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml names {entry}: missing"
        if path.is_file():
            listed.add(path)
    return listed


def test_every_manifest_is_in_a_kustomization_and_every_entry_exists() -> None:
    directories = {p.parent for p in K8S.rglob("kustomization.yaml")}
    listed = set().union(*(kustomization_files(d) for d in directories))
    manifests = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert manifests == listed, sorted(str(p.relative_to(ROOT)) for p in manifests ^ listed)


# ------------------------------------------------------------ the checks bite
def test_a_wrong_type_or_an_unknown_field_is_refused() -> None:
    deployment = copy.deepcopy(named(overlay("in-cluster"), "Deployment", "scheduler"))
    assert invalid(deployment) is None
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    assert "is not of type 'integer'" in (invalid(wrong_type) or "")
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    assert "livenessProbes" in (invalid(typo) or "")
    no_name = copy.deepcopy(deployment)
    del no_name["spec"]["template"]["spec"]["containers"][0]["name"]
    assert "'name' is a required property" in (invalid(no_name) or "")


def test_a_kustomization_naming_a_missing_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - gone.yaml\n")
    with pytest.raises(AssertionError, match="gone.yaml: missing"):
        kustomization_files(tmp_path)
    with pytest.raises(AssertionError, match="gone.yaml"):
        render(tmp_path)


def test_a_setting_cronfleet_does_not_read_is_caught() -> None:
    assert "CRONFLEET_ETCD_ENDPOINTS" in SETTINGS and "CRONFLEET_ETCD_ENDPOINT" not in SETTINGS
