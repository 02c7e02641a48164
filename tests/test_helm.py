"""The Helm chart deploy/helm/meet-telephony, linted and rendered with helm (no cluster needed).

helm is built once by `scripts/helm.sh install` (Go module proxy, into the git-ignored
`.cache/helm/`); without it this module is skipped with one line, or fails when `HELM_REQUIRED=1`
(for a CI job that built it and must not silently skip). A build running beside the tests is
waited for (`tests/fixtures/builds.py`). helm runs with its cache, config and data
homes (and HOME, KUBECONFIG) in a temporary directory: nothing is written to the home directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import AliasChoices, SecretStr

from telephony.settings import Settings, SettingsError, load_settings
from tests.fixtures import builds

pytestmark = pytest.mark.helm
REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "helm.sh"
CHART = REPO / "deploy" / "helm" / "meet-telephony"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
NOT_BUILT = "helm not built: run scripts/helm.sh install"

RELEASE = "tel"
FULLNAME = f"{RELEASE}-meet-telephony"
SECRET = "telephony-credentials"


def secret_settings() -> frozenset[str]:
    """The settings typed SecretStr, plus LIVEKIT_API_KEY (the other half of the LiveKit pair)."""
    secret = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *get_args(field.annotation))
    }
    return frozenset(secret | {"LIVEKIT_API_KEY"})


def setting_names() -> frozenset[str]:
    """Every environment variable `Settings` reads: field names and their aliases."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        if isinstance(field.validation_alias, AliasChoices):
            names |= {str(choice).upper() for choice in field.validation_alias.choices}
    return frozenset(names)


def required_when_enabled() -> frozenset[str]:
    """The variables `Settings` refuses to do without once telephony is enabled."""
    complete = {
        "livekit_url": "http://livekit:7880",
        "livekit_api_key": "key",
        "livekit_api_secret": "secret",
        "telephony_pin_hash_key": "k" * 32,
        "telephony_payload_keys": "k1:" + "A" * 43 + "=",
    }
    load_settings(room_telephony_enabled=True, **complete)
    required = set()
    for name in complete:
        try:
            load_settings(
                room_telephony_enabled=True, **{k: v for k, v in complete.items() if k != name}
            )
        except SettingsError:
            required.add(name.upper())
    return frozenset(required)


SECRET_KEYS = tuple(sorted(secret_settings()))
# Read by the gateway only (the backend API and the Temporal UI's codec endpoint).
GATEWAY_ONLY = frozenset({"TELEPHONY_API_TOKEN", "TELEPHONY_CODEC_TOKEN"})
# Optional in the Secret: Temporal Cloud's key, and the token that turns the codec endpoint on.
OPTIONAL_SECRETS = frozenset({"TEMPORAL_API_KEY", "TELEPHONY_CODEC_TOKEN"})
COMPONENTS = ("worker", "gateway")

Doc = dict[str, Any]


def _helm_binary(*, wait: bool) -> str | None:
    """helm's path. A build running beside the tests (`tests/fixtures/builds.py`) is waited for,
    or, at import (`wait=False`), left to the fixture: None."""
    if wait:
        builds.wait(builds.HELM)
    elif builds.pending(builds.HELM):
        return None
    found = subprocess.run([str(SCRIPT), "path"], capture_output=True, text=True, check=False)
    if found.returncode == 0:
        return found.stdout.strip()
    reason = builds.failed_reason(builds.HELM, NOT_BUILT) or NOT_BUILT
    if os.environ.get("HELM_REQUIRED") == "1" or builds.state(builds.HELM) == builds.BUILT:
        pytest.fail(f"{reason} (required)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


HELM_BINARY = _helm_binary(wait=False)


@dataclass(frozen=True)
class Helm:
    binary: str
    env: dict[str, str]
    workdir: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def values_file(self, values: Doc) -> Path:
        # JSON is YAML: no quoting surprises in the values handed to helm.
        text = json.dumps(values, sort_keys=True)
        path = self.workdir / f"values-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
        path.write_text(text)
        return path

    def template_result(
        self,
        values: Doc | None = None,
        *,
        files: tuple[Path, ...] = (),
        secret: str | None = SECRET,
        chart: Path = CHART,
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", RELEASE, str(chart), "--namespace", "telephony"]
        for file in files:
            args += ["--values", str(file)]
        if values is not None:
            args += ["--values", str(self.values_file(values))]
        if secret is not None:
            args += ["--set-string", f"secrets.existingSecret={secret}"]
        return self.run(*args)

    def template(
        self,
        values: Doc | None = None,
        *,
        files: tuple[Path, ...] = (),
        secret: str | None = SECRET,
        chart: Path = CHART,
    ) -> list[Doc]:
        result = self.template_result(values, files=files, secret=secret, chart=chart)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Helm]:
    home = tmp_path_factory.mktemp("helm-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_") and k != "KUBECONFIG"}
    env.update(
        HOME=str(home),
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
        # No kubeconfig at all: nothing here may reach a cluster.
        KUBECONFIG=str(home / "no-kubeconfig"),
    )
    workdir = home / "work"
    workdir.mkdir()
    binary = HELM_BINARY or _helm_binary(wait=True)
    assert binary is not None
    yield Helm(binary, env, workdir)


@pytest.fixture(scope="module")
def default_docs(helm: Helm) -> list[Doc]:
    return helm.template()


@pytest.fixture(scope="module")
def production_docs(helm: Helm) -> list[Doc]:
    return helm.template(files=(PRODUCTION_VALUES,), secret=None)


def kinds_and_names(docs: list[Doc]) -> set[tuple[str, str]]:
    return {(doc["kind"], doc["metadata"]["name"]) for doc in docs}


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [
        doc
        for doc in docs
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered ({kinds_and_names(docs)})"
    return found[0]


def deployment(docs: list[Doc], component: str) -> Doc:
    return one(docs, "Deployment", f"{FULLNAME}-{component}")


def container(docs: list[Doc], component: str) -> Doc:
    containers = deployment(docs, component)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == [component]
    result: Doc = containers[0]
    return result


def config_data(docs: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap", FULLNAME)["data"]
    return data


def container_port(spec: Doc, port: int | str) -> int:
    """A probe's or Service's port (a number or the name of a declared port) as a number."""
    declared = {p["name"]: p["containerPort"] for p in spec.get("ports", [])}
    if isinstance(port, str):
        assert port in declared, f"port {port!r} is not declared by {spec['name']}: {declared}"
        return int(declared[port])
    assert port in declared.values(), f"port {port} is not declared by {spec['name']}: {declared}"
    return port


def checksum(docs: list[Doc], component: str) -> str:
    annotations = deployment(docs, component)["spec"]["template"]["metadata"]["annotations"]
    value: str = annotations["checksum/config"]
    return value


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


# --- lint -----------------------------------------------------------------------------------------


def test_lint_passes_with_the_default_values_and_a_secret_name(helm: Helm) -> None:
    result = helm.run(
        "lint", "--strict", str(CHART), "--set-string", f"secrets.existingSecret={SECRET}"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_passes_with_the_production_values(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(CHART), "--values", str(PRODUCTION_VALUES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_production_values_run_3_autoscaled_gateways_4_workers_and_an_ingress(
    production_docs: list[Doc],
) -> None:
    hpa = one(production_docs, "HorizontalPodAutoscaler", f"{FULLNAME}-gateway")
    assert hpa["spec"]["minReplicas"] == 3
    assert deployment(production_docs, "worker")["spec"]["replicas"] == 4
    assert find(production_docs, "Ingress")
    for component in COMPONENTS:
        resources = container(production_docs, component)["resources"]
        assert resources["requests"] and resources["limits"]


# --- what is rendered -----------------------------------------------------------------------------

DEFAULT_OBJECTS = {
    ("ServiceAccount", FULLNAME),
    ("ConfigMap", FULLNAME),
    ("Service", f"{FULLNAME}-gateway"),
    ("Deployment", f"{FULLNAME}-worker"),
    ("Deployment", f"{FULLNAME}-gateway"),
    ("PodDisruptionBudget", f"{FULLNAME}-worker"),
    ("PodDisruptionBudget", f"{FULLNAME}-gateway"),
}
PRODUCTION_OBJECTS = DEFAULT_OBJECTS | {
    ("HorizontalPodAutoscaler", f"{FULLNAME}-gateway"),
    ("Ingress", f"{FULLNAME}-gateway"),
}


def test_template_renders_the_expected_kinds_and_names(default_docs: list[Doc]) -> None:
    assert kinds_and_names(default_docs) == DEFAULT_OBJECTS


def test_template_renders_the_hpa_and_ingress_with_the_production_values(
    production_docs: list[Doc],
) -> None:
    assert kinds_and_names(production_docs) == PRODUCTION_OBJECTS


@pytest.mark.parametrize("values", ["default", "production"])
def test_the_chart_never_renders_a_secret(
    values: str, default_docs: list[Doc], production_docs: list[Doc]
) -> None:
    docs = default_docs if values == "default" else production_docs
    assert not find(docs, "Secret")


def test_the_chart_app_version_is_the_project_version_and_the_default_image_tag(
    default_docs: list[Doc],
) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project
    for component in COMPONENTS:
        assert container(default_docs, component)["image"] == f"meet-telephony:{project}"


# --- the Deployments ------------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_deployment_runs_its_command_through_the_image_entrypoint(
    component: str, default_docs: list[Doc]
) -> None:
    entrypoint = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", dockerfile(), re.MULTILINE)
    assert entrypoint and json.loads(entrypoint.group(1)) == ["meet-telephony"]
    spec = container(default_docs, component)
    assert "command" not in spec, "`command` would replace the image's ENTRYPOINT"
    assert spec["args"] == [component]


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_deployment_runs_as_the_image_user_non_root(
    component: str, default_docs: list[Doc]
) -> None:
    uid = re.search(r"useradd\b.*--uid (\d+)", dockerfile())
    assert uid and int(uid.group(1)) == 10001
    pod = deployment(default_docs, component)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    security = container(default_docs, component)["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security["capabilities"].get("add")


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_deployment_has_a_read_only_root_filesystem_and_a_writable_tmp(
    component: str, default_docs: list[Doc]
) -> None:
    spec = container(default_docs, component)
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    pod = deployment(default_docs, component)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_gateway_probes_healthz_and_readyz_on_its_port(default_docs: list[Doc]) -> None:
    spec = container(default_docs, "gateway")
    port = int(config_data(default_docs)["TELEPHONY_GATEWAY_PORT"])
    assert port == 8080
    liveness, readiness = spec["livenessProbe"]["httpGet"], spec["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    assert container_port(spec, liveness["port"]) == port
    assert container_port(spec, readiness["port"]) == port


def test_the_worker_probes_its_metrics_endpoint(default_docs: list[Doc]) -> None:
    spec = container(default_docs, "worker")
    data = config_data(default_docs)
    port = int(data["TELEPHONY_WORKER_METRICS_PORT"])
    # worker/app.py binds the metrics on TELEPHONY_GATEWAY_HOST: the kubelet must reach it.
    assert data["TELEPHONY_GATEWAY_HOST"] == "0.0.0.0"
    for probe in ("livenessProbe", "readinessProbe"):
        get = spec[probe]["httpGet"]
        assert get["path"] == "/metrics"
        assert container_port(spec, get["port"]) == port


def test_the_worker_has_more_than_its_20_s_of_graceful_shutdown(default_docs: list[Doc]) -> None:
    pod = deployment(default_docs, "worker")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 20


def secret_env(docs: list[Doc], component: str) -> dict[str, Doc]:
    """name -> secretKeyRef of the container's `env` (every entry must be one)."""
    refs = {}
    for entry in container(docs, component).get("env", []):
        assert set(entry) == {"name", "valueFrom"}, f"{entry['name']}: a literal, not the Secret"
        refs[entry["name"]] = entry["valueFrom"]["secretKeyRef"]
    return refs


@pytest.mark.parametrize("component", COMPONENTS)
def test_pods_take_their_non_secret_settings_from_the_configmap(
    component: str, default_docs: list[Doc]
) -> None:
    spec = container(default_docs, component)
    assert spec["envFrom"] == [{"configMapRef": {"name": FULLNAME, "optional": False}}]
    assert one(default_docs, "ConfigMap", FULLNAME)


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_secret_setting_a_component_reads_comes_from_the_existing_secret(
    component: str, default_docs: list[Doc]
) -> None:
    expected = secret_settings() - (GATEWAY_ONLY if component == "worker" else frozenset())
    refs = secret_env(default_docs, component)
    assert set(refs) == expected
    for name, ref in refs.items():
        assert (ref["name"], ref["key"]) == (SECRET, name)


@pytest.mark.parametrize("values", ["default", "production"])
@pytest.mark.parametrize("component", COMPONENTS)
def test_the_secret_keys_the_service_requires_when_enabled_are_not_optional(
    component: str, values: str, default_docs: list[Doc], production_docs: list[Doc]
) -> None:
    docs = default_docs if values == "default" else production_docs
    refs = secret_env(docs, component)
    assert required_when_enabled() >= {"TELEPHONY_PIN_HASH_KEY", "TELEPHONY_PAYLOAD_KEYS"}
    for name in required_when_enabled() & secret_settings():
        assert refs[name]["optional"] is False, name
    for name in OPTIONAL_SECRETS & set(refs):
        assert refs[name]["optional"] is True, name


def test_with_telephony_disabled_only_the_api_token_is_a_required_secret_key(helm: Helm) -> None:
    docs = helm.template({"config": {"ROOM_TELEPHONY_ENABLED": "false"}})
    required = {
        (component, name)
        for component in COMPONENTS
        for name, ref in secret_env(docs, component).items()
        if not ref["optional"]
    }
    assert required == {("gateway", "TELEPHONY_API_TOKEN")}


@pytest.mark.parametrize("values", ["default", "production"])
def test_every_environment_variable_the_chart_sets_is_a_setting(
    values: str, default_docs: list[Doc], production_docs: list[Doc]
) -> None:
    docs = default_docs if values == "default" else production_docs
    names = set(config_data(docs))
    for component in COMPONENTS:
        names |= {entry["name"] for entry in container(docs, component)["env"]}
    assert not names - setting_names()


@pytest.mark.parametrize("path", [CHART / "values.yaml", PRODUCTION_VALUES])
def test_every_config_entry_of_the_values_files_is_a_setting(path: Path) -> None:
    config = yaml.safe_load(path.read_text())["config"]
    assert not {key.upper() for key in config} - setting_names()


@pytest.mark.parametrize("component", COMPONENTS)
def test_replicas_of_a_component_are_spread_over_nodes(
    component: str, default_docs: list[Doc]
) -> None:
    pod = deployment(default_docs, component)["spec"]["template"]
    labels = pod["metadata"]["labels"]
    by_key = {c["topologyKey"]: c for c in pod["spec"]["topologySpreadConstraints"]}
    node = by_key["kubernetes.io/hostname"]
    assert node["maxSkew"] == 1
    selector = node["labelSelector"]["matchLabels"]
    assert (
        selector.items() <= labels.items() and selector["app.kubernetes.io/component"] == component
    )


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_disruption_budget_keeps_one_pod_of_each_component(
    component: str, default_docs: list[Doc]
) -> None:
    pdb = one(default_docs, "PodDisruptionBudget", f"{FULLNAME}-{component}")
    assert pdb["spec"]["minAvailable"] == 1
    labels = deployment(default_docs, component)["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_single_pod_gets_no_disruption_budget_that_would_block_drains(
    helm: Helm, component: str
) -> None:
    docs = helm.template({component: {"replicas": 1}})
    other = next(c for c in COMPONENTS if c != component)
    assert not find(docs, "PodDisruptionBudget", f"{FULLNAME}-{component}")
    assert find(docs, "PodDisruptionBudget", f"{FULLNAME}-{other}")


@pytest.mark.parametrize(("min_replicas", "budget"), [(1, False), (2, True)])
def test_an_autoscaled_gateway_gets_a_budget_only_when_the_hpa_minimum_is_above_one(
    helm: Helm, min_replicas: int, budget: bool
) -> None:
    autoscaling = {"enabled": True, "minReplicas": min_replicas}
    docs = helm.template({"gateway": {"replicas": 1, "autoscaling": autoscaling}})
    assert bool(find(docs, "PodDisruptionBudget", f"{FULLNAME}-gateway")) == budget


# --- Secret and ConfigMap -------------------------------------------------------------------------


def test_rendering_fails_without_secrets_existing_secret(helm: Helm) -> None:
    result = helm.template_result(secret=None)
    assert result.returncode != 0
    assert "secrets.existingSecret is required" in result.stderr


@pytest.mark.parametrize("values", ["default", "production"])
def test_no_secret_key_appears_in_any_configmap(
    values: str, default_docs: list[Doc], production_docs: list[Doc]
) -> None:
    docs = default_docs if values == "default" else production_docs
    configmaps = find(docs, "ConfigMap")
    assert configmaps
    for configmap in configmaps:
        keys = {key.upper() for key in configmap.get("data", {})}
        assert not keys & set(SECRET_KEYS), configmap["metadata"]["name"]


@pytest.mark.parametrize("key", [*SECRET_KEYS, "livekit_api_secret"])
def test_a_secret_key_in_config_fails_rendering(helm: Helm, key: str) -> None:
    result = helm.template_result({"config": {key: "not-in-a-configmap"}})
    assert result.returncode != 0
    assert f"config.{key} is a secret" in result.stderr
    assert "not-in-a-configmap" not in result.stdout


def test_the_readme_documents_the_keys_of_the_secret_and_how_to_create_them() -> None:
    readme = (CHART / "README.md").read_text()
    for key in SECRET_KEYS:
        assert f"| `{key}` |" in readme, key
    for key in secret_settings() - OPTIONAL_SECRETS:
        assert f"--from-literal={key}=" in readme, key


def test_the_configmap_carries_temporal_and_livekit_from_values(helm: Helm) -> None:
    docs = helm.template(
        {
            "temporal": {"address": "temporal.example.net:7233", "namespace": "meet"},
            "livekit": {"url": "https://livekit.example.net"},
        }
    )
    data = config_data(docs)
    assert data["TEMPORAL_ADDRESS"] == "temporal.example.net:7233"
    assert data["TEMPORAL_NAMESPACE"] == "meet"
    assert data["LIVEKIT_URL"] == "https://livekit.example.net"


def test_the_configmap_carries_the_config_map_of_values_as_strings(helm: Helm) -> None:
    docs = helm.template({"config": {"ROOM_TELEPHONY_PIN_LENGTH": 6, "LOG_LEVEL": ""}})
    data = config_data(docs)
    assert data["ROOM_TELEPHONY_PIN_LENGTH"] == "6"
    assert data["ROOM_TELEPHONY_ENABLED"] == "true"
    assert "LOG_LEVEL" not in data, "an empty value leaves the variable unset"


@pytest.mark.parametrize("key", ["TEMPORAL_ADDRESS", "LIVEKIT_URL", "TELEPHONY_GATEWAY_PORT"])
def test_a_setting_the_chart_derives_is_refused_in_config(helm: Helm, key: str) -> None:
    result = helm.template_result({"config": {key: "x"}})
    assert result.returncode != 0
    assert f"config.{key} is set by the chart" in result.stderr


def test_a_configmap_change_changes_the_pod_template_checksum(
    helm: Helm, default_docs: list[Doc]
) -> None:
    changed = helm.template({"config": {"LOG_LEVEL": "DEBUG"}})
    for component in COMPONENTS:
        assert checksum(changed, component) != checksum(default_docs, component)


def test_a_change_outside_the_configmap_keeps_the_checksum(
    helm: Helm, default_docs: list[Doc]
) -> None:
    changed = helm.template({"worker": {"replicas": 3}})
    assert config_data(changed) == config_data(default_docs)
    for component in COMPONENTS:
        assert checksum(changed, component) == checksum(default_docs, component)


def test_temporal_mtls_mounts_the_secret_where_the_configmap_points(helm: Helm) -> None:
    docs = helm.template(
        {"temporal": {"tls": {"existingSecret": "temporal-client", "serverCA": True}}}
    )
    data = config_data(docs)
    paths = [
        data[f"TEMPORAL_TLS_{name}_PATH"]
        for name in ("CLIENT_CERT", "CLIENT_KEY", "SERVER_CA_CERT")
    ]
    for component in COMPONENTS:
        pod = deployment(docs, component)["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v.get("secret"))
        assert volume["secret"]["secretName"] == "temporal-client"
        mount = next(
            m for m in container(docs, component)["volumeMounts"] if m["name"] == volume["name"]
        )
        assert mount["readOnly"] is True
        assert all(Path(p).parent == Path(mount["mountPath"]) for p in paths)


# --- scaling --------------------------------------------------------------------------------------


def test_the_hpa_exists_only_when_enabled(helm: Helm, default_docs: list[Doc]) -> None:
    assert not find(default_docs, "HorizontalPodAutoscaler")
    docs = helm.template(
        {"gateway": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9}}}
    )
    hpa = one(docs, "HorizontalPodAutoscaler", f"{FULLNAME}-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{FULLNAME}-gateway",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_under_the_hpa_the_gateway_deployment_has_no_replicas(
    helm: Helm, default_docs: list[Doc]
) -> None:
    assert deployment(default_docs, "gateway")["spec"]["replicas"] == 2
    docs = helm.template({"gateway": {"autoscaling": {"enabled": True}}})
    assert "replicas" not in deployment(docs, "gateway")["spec"]
    assert deployment(docs, "worker")["spec"]["replicas"] == 2


def test_the_hpa_is_refused_without_a_cpu_request(helm: Helm) -> None:
    result = helm.template_result(
        {"gateway": {"autoscaling": {"enabled": True}, "resources": {"requests": {"cpu": None}}}}
    )
    assert result.returncode != 0
    assert "gateway.resources.requests.cpu" in result.stderr


def test_the_replicas_of_each_component_come_from_values(helm: Helm) -> None:
    docs = helm.template({"worker": {"replicas": 5}, "gateway": {"replicas": 3}})
    assert deployment(docs, "worker")["spec"]["replicas"] == 5
    assert deployment(docs, "gateway")["spec"]["replicas"] == 3


# --- metrics, Service, Ingress, notes -------------------------------------------------------------


@pytest.mark.parametrize("values", ["default", "production"])
@pytest.mark.parametrize("component", COMPONENTS)
def test_the_prometheus_annotations_point_at_a_port_the_container_declares(
    component: str, values: str, default_docs: list[Doc], production_docs: list[Doc]
) -> None:
    docs = default_docs if values == "default" else production_docs
    annotations = deployment(docs, component)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    spec = container(docs, component)
    expected = {"worker": "TELEPHONY_WORKER_METRICS_PORT", "gateway": "TELEPHONY_GATEWAY_PORT"}
    port = int(annotations["prometheus.io/port"])
    assert container_port(spec, port) == int(config_data(docs)[expected[component]])


def test_the_service_sends_port_8080_to_the_gateway_pods_only(default_docs: list[Doc]) -> None:
    service = one(default_docs, "Service", f"{FULLNAME}-gateway")
    assert service["spec"]["type"] == "ClusterIP"
    [port] = service["spec"]["ports"]
    assert port["port"] == 8080
    assert container_port(container(default_docs, "gateway"), port["targetPort"]) == 8080
    selector = service["spec"]["selector"].items()
    for component in COMPONENTS:
        labels = deployment(default_docs, component)["spec"]["template"]["metadata"]["labels"]
        assert (selector <= labels.items()) == (component == "gateway")


def test_the_ingress_routes_the_webhook_path_to_the_gateway_service(
    production_docs: list[Doc],
) -> None:
    ingress = one(production_docs, "Ingress", f"{FULLNAME}-gateway")
    paths = {
        p["path"]: p["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert paths["/livekit/webhook"] == {"name": f"{FULLNAME}-gateway", "port": {"name": "http"}}
    assert "/metrics" not in paths


def test_the_production_configmap_carries_the_codec_origins_and_reconcile_settings(
    production_docs: list[Doc],
) -> None:
    data = config_data(production_docs)
    assert data["TELEPHONY_CODEC_CORS_ORIGINS"] == "https://temporal.example.com"
    assert data["TELEPHONY_RECONCILE_INTERVAL"] == "5m"


def test_the_production_ingress_routes_the_codec_endpoint_to_the_gateway(
    production_docs: list[Doc],
) -> None:
    ingress = one(production_docs, "Ingress", f"{FULLNAME}-gateway")
    paths = {p["path"]: p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths["/codec"]["pathType"] == "Prefix"
    assert paths["/codec"]["backend"]["service"]["name"] == f"{FULLNAME}-gateway"


def test_the_notes_say_where_to_point_livekit_webhooks(helm: Helm) -> None:
    # `helm template` drops NOTES.txt: a copy of the chart renders it into a ConfigMap instead.
    chart = helm.workdir / "chart-with-notes"
    if not chart.exists():
        shutil.copytree(CHART, chart)
        (chart / "templates" / "zz-notes-preview.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-preview\ndata:\n"
            '  notes: {{ include (print .Template.BasePath "/NOTES.txt") . | quote }}\n'
        )
    docs = helm.template(files=(PRODUCTION_VALUES,), secret=None, chart=chart)
    notes = one(docs, "ConfigMap", "notes-preview")["data"]["notes"]
    assert "https://telephony.example.com/livekit/webhook" in notes
    assert f"http://{FULLNAME}-gateway.telephony.svc:8080/livekit/webhook" in notes
    assert f"port-forward svc/{FULLNAME}-gateway" in notes


# --- values ---------------------------------------------------------------------------------------


def test_the_values_schema_rejects_an_unknown_value(helm: Helm) -> None:
    result = helm.template_result({"worker": {"replicaz": 3}})
    assert result.returncode != 0
    assert "replicaz" in result.stderr


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_values_schema_rejects_replicas_that_are_not_a_number(
    helm: Helm, component: str
) -> None:
    result = helm.template_result({component: {"replicas": "two"}})
    assert result.returncode != 0
    assert f"/{component}/replicas" in result.stderr and "want integer" in result.stderr


def test_the_values_schema_rejects_a_missing_temporal_address(helm: Helm) -> None:
    # null deletes the default: the same as a values file without the key.
    result = helm.template_result({"temporal": {"address": None}})
    assert result.returncode != 0
    assert "missing property 'address'" in result.stderr


@pytest.mark.parametrize("address", ["", "temporal.example.net", "grpc://temporal:7233"])
def test_the_values_schema_rejects_a_temporal_address_that_is_not_host_port(
    helm: Helm, address: str
) -> None:
    result = helm.template_result({"temporal": {"address": address}})
    assert result.returncode != 0
    assert "/temporal/address" in result.stderr


@pytest.mark.parametrize("address", ["temporal:7233", "ns.acct.tmprl.cloud:7233", "[::1]:7233"])
def test_the_values_schema_accepts_a_host_port_temporal_address(helm: Helm, address: str) -> None:
    assert config_data(helm.template({"temporal": {"address": address}}))["TEMPORAL_ADDRESS"] == (
        address
    )


def _leaves(values: Doc, prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{path}.")
        else:
            yield path


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(f"{root}.")


def test_the_readme_table_documents_every_value_and_only_those() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    table = set(re.findall(r"^\| `([\w.]+)` \|", readme.split("## Values", 1)[1], re.MULTILINE))
    leaves = set(_leaves(values))
    # A row may stand for a subtree (`worker.resources`): a leaf needs itself or an ancestor.
    assert not {leaf for leaf in leaves if not any(_within(leaf, row) for row in table)}
    assert not {row for row in table if not any(_within(leaf, row) for leaf in leaves)}
