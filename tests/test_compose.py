"""docker-compose.yml, checked without a Docker engine: structure, pins, mounts, settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import AliasChoices, SecretStr

from telephony.settings import Settings, SettingsError, load_settings
from tests.fixtures.processes import installed_binary

REPO = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
EXPECTED = {
    "postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui",
    "redis", "livekit", "sip", "worker", "gateway",
}  # fmt: skip
TELEPHONY = ("worker", "gateway")
ONE_SHOT = ("temporal-schema", "temporal-namespace")  # run to completion: no health check


def env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def required_when_enabled() -> set[str]:
    """The variables `Settings` refuses to do without once telephony is enabled."""
    complete = {
        "room_telephony_enabled": True,
        "livekit_url": "http://livekit:7880",
        "livekit_api_key": "key",
        "livekit_api_secret": "secret",
        "telephony_pin_hash_key": "k" * 32,
        "telephony_payload_keys": "k1:" + "A" * 43 + "=",
    }
    load_settings(**complete)
    required = set()
    for name in complete:
        if name == "room_telephony_enabled":
            continue
        try:
            load_settings(**{k: v for k, v in complete.items() if k != name})
        except SettingsError:
            required.add(name.upper())
    return required


def secret_settings() -> set[str]:
    """The settings typed SecretStr, plus LIVEKIT_API_KEY (the other half of the LiveKit pair)."""
    secret = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *get_args(field.annotation))
    }
    return secret | {"LIVEKIT_API_KEY"}


def setting_names() -> set[str]:
    """Every environment variable `Settings` reads: field names and their aliases."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        if isinstance(field.validation_alias, AliasChoices):
            names |= {str(choice).upper() for choice in field.validation_alias.choices}
    return names


def env_example_comment(variable: str) -> str:
    """The comment lines right above `variable=` in .env.example, joined."""
    lines = (REPO / ".env.example").read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{variable}="))
    comment: list[str] = []
    for line in reversed(lines[:index]):
        if not line.startswith("#"):
            break
        comment.insert(0, line.lstrip("# "))
    return " ".join(comment)


def environment(service: str) -> dict[str, Any]:
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: use the mapping form of `environment`"
    return env


def test_every_component_is_a_service() -> None:
    assert set(SERVICES) == EXPECTED


@pytest.mark.parametrize("service", sorted(EXPECTED - set(TELEPHONY)))
def test_images_are_pinned(service: str) -> None:
    image = SERVICES[service]["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest" and re.search(r"\d", tag), image


def test_livekit_versions_are_the_ones_this_service_was_checked_against() -> None:
    assert SERVICES["livekit"]["image"] == "livekit/livekit-server:v1.13.5"
    assert SERVICES["sip"]["image"] == "livekit/sip:v1.11.0"


@pytest.mark.parametrize("service", TELEPHONY)
def test_worker_and_gateway_are_built_from_the_repository_dockerfile(service: str) -> None:
    build = SERVICES[service]["build"]
    context = build if isinstance(build, str) else build["context"]
    assert (REPO / context / "Dockerfile").is_file()


def test_the_dockerfile_runs_as_non_root_on_python_311_slim_with_a_healthcheck() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11[\w.-]*-slim", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile


def test_no_secret_is_baked_into_the_image() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert not re.search(r"(SECRET|TOKEN|PASSWORD|API_KEY)\s*=", dockerfile)
    assert ".env" in (REPO / ".dockerignore").read_text().split()


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_every_mounted_file_exists_in_the_repository(service: str) -> None:
    for volume in SERVICES[service].get("volumes", []):
        source = volume.split(":", 1)[0]
        if source.startswith((".", "/")):
            assert (REPO / source).exists(), f"{service}: {source} is not in the repository"


@pytest.mark.parametrize("service", sorted(EXPECTED - set(ONE_SHOT)))
def test_every_service_has_a_healthcheck(service: str) -> None:
    assert SERVICES[service]["healthcheck"]["test"]


@pytest.mark.parametrize("service", ONE_SHOT)
def test_one_shot_services_are_not_restarted_and_are_waited_for_to_complete(service: str) -> None:
    assert SERVICES[service]["restart"] == "no"
    waiting = [name for name, spec in SERVICES.items() if service in spec.get("depends_on", {})]
    assert waiting, f"nothing waits for {service}"
    for name in waiting:
        condition = SERVICES[name]["depends_on"][service]["condition"]
        assert condition == "service_completed_successfully", name


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_dependencies_wait_on_a_condition(service: str) -> None:
    depends = SERVICES[service].get("depends_on", {})
    assert isinstance(depends, dict), f"{service}: depends_on needs conditions"
    for dependency, spec in depends.items():
        assert dependency in SERVICES
        assert spec["condition"] in ("service_healthy", "service_completed_successfully")


@pytest.mark.parametrize("service", TELEPHONY)
def test_worker_and_gateway_get_every_setting_telephony_needs(service: str) -> None:
    env = environment(service)
    needed = {"ROOM_TELEPHONY_ENABLED", "TEMPORAL_ADDRESS", *required_when_enabled()}
    assert needed <= set(env), needed - set(env)
    assert str(env["ROOM_TELEPHONY_ENABLED"]).lower() == "true"
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["LIVEKIT_URL"].startswith("http://livekit:")


@pytest.mark.parametrize("service", TELEPHONY)
def test_every_secret_setting_required_when_enabled_reaches_it_from_env(service: str) -> None:
    env = environment(service)
    secrets = required_when_enabled() & secret_settings()
    assert {"TELEPHONY_PIN_HASH_KEY", "TELEPHONY_PAYLOAD_KEYS"} <= secrets
    for name in secrets:
        # `:?`: compose refuses to start while .env leaves it empty.
        assert str(env.get(name, "")).startswith(f"${{{name}:?"), f"{service}: {name}"


@pytest.mark.parametrize("service", TELEPHONY)
def test_no_secret_setting_is_written_in_clear_in_compose(service: str) -> None:
    env = environment(service)
    for name in secret_settings() & set(env):
        assert str(env[name]).startswith(f"${{{name}:"), f"{service}: {name}"


@pytest.mark.parametrize("service", TELEPHONY)
def test_every_variable_set_on_worker_and_gateway_is_a_setting(service: str) -> None:
    assert not set(environment(service)) - setting_names()


def test_the_gateway_gets_the_optional_codec_token_and_allows_the_temporal_ui_origin() -> None:
    env = environment("gateway")
    assert env["TELEPHONY_CODEC_TOKEN"] == "${TELEPHONY_CODEC_TOKEN:-}"
    # The origin the UI is served from, which it also allows itself.
    ui_origin = environment("temporal-ui")["TEMPORAL_CORS_ORIGINS"]
    assert ui_origin == "http://localhost:${TEMPORAL_UI_HOST_PORT:-8233}"
    assert env["TELEPHONY_CODEC_CORS_ORIGINS"] == ui_origin


@pytest.mark.parametrize("variable", ["TELEPHONY_PIN_HASH_KEY", "TELEPHONY_PAYLOAD_KEYS"])
def test_an_env_example_placeholder_left_unchanged_stops_the_service(variable: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        load_settings(**{variable.lower(): env_example()[variable]})


@pytest.mark.parametrize(
    "variable", ["TELEPHONY_PIN_HASH_KEY", "TELEPHONY_PAYLOAD_KEYS", "TELEPHONY_CODEC_TOKEN"]
)
def test_the_generate_command_of_env_example_makes_a_value_the_service_accepts(
    variable: str,
) -> None:
    found = re.search(r"Generate: (.+)$", env_example_comment(variable))
    assert found, f".env.example does not say how to generate {variable}"
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    value = subprocess.run(
        ["bash", "-c", found.group(1)], capture_output=True, text=True, check=True
    ).stdout.strip()
    settings = load_settings(**{variable.lower(): value})
    assert getattr(settings, variable.lower()).get_secret_value() == value


def test_the_gateway_has_its_token_and_listens_beyond_loopback() -> None:
    env = environment("gateway")
    assert env["TELEPHONY_API_TOKEN"].startswith("${TELEPHONY_API_TOKEN")
    assert env["TELEPHONY_GATEWAY_HOST"] == "0.0.0.0"


def test_every_variable_compose_reads_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{(\w+)", (REPO / "docker-compose.yml").read_text()))
    assert used <= set(env_example()), used - set(env_example())


def test_livekit_signs_webhooks_with_the_key_the_gateway_verifies() -> None:
    livekit = yaml.safe_load((REPO / "deploy/livekit.yaml").read_text())
    assert livekit["webhook"]["api_key"] == env_example()["LIVEKIT_API_KEY"]
    assert livekit["webhook"]["urls"] == ["http://gateway:8080/livekit/webhook"]
    assert "keys" not in livekit  # from LIVEKIT_KEYS, built from .env


def test_livekit_and_sip_share_redis() -> None:
    livekit = yaml.safe_load((REPO / "deploy/livekit.yaml").read_text())
    sip = yaml.safe_load((REPO / "deploy/sip.yaml").read_text())
    assert livekit["redis"]["address"] == sip["redis"]["address"] == "redis:6379"
    assert "api_secret" not in sip


# --- in step with the scripts the tests run (scripts/temporal-cluster.sh, scripts/livekit-*.sh) --


def script_variable(script: str, name: str) -> str:
    """`NAME="value"` at the start of a line of scripts/<script>, with `$REPO/` dropped."""
    text = (REPO / "scripts" / script).read_text()
    found = re.search(rf'^{name}="([^"]+)"', text, re.MULTILINE)
    assert found, f"no {name}= in scripts/{script}"
    return found.group(1).removeprefix("$REPO/")


def image_tag(service: str) -> str:
    return str(SERVICES[service]["image"]).rpartition(":")[2]


def mounts(service: str) -> dict[str, str]:
    """container path -> repository path of the service's bind mounts."""
    pairs = (v.split(":")[:2] for v in SERVICES[service].get("volumes", []))
    return {target: source.removeprefix("./") for source, target in pairs if source.startswith(".")}


def dev_server_versions() -> dict[str, str]:
    """What the venv's Temporal CLI embeds: `temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)`."""
    out = subprocess.run(
        [installed_binary("temporal"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"Server (\S+), UI (\S+)\)", out)
    assert found, out
    return {"server": found.group(1), "ui": found.group(2)}


def test_temporal_images_are_the_server_the_tests_run() -> None:
    version = script_variable("temporal-cluster.sh", "TEMPORAL_VERSION").removeprefix("v")
    assert version == dev_server_versions()["server"]
    assert SERVICES["temporal"]["image"] == f"temporalio/server:{version}"
    for service in ONE_SHOT:
        assert SERVICES[service]["image"] == f"temporalio/admin-tools:{version}"
    assert SERVICES["temporal-ui"]["image"] == f"temporalio/ui:{dev_server_versions()['ui']}"


def test_livekit_images_are_the_versions_the_scripts_build() -> None:
    assert image_tag("livekit") == script_variable("livekit-real.sh", "LIVEKIT_VERSION")
    assert image_tag("sip") == script_variable("livekit-sip.sh", "SIP_VERSION")


def test_temporal_runs_with_the_config_files_the_cluster_script_reads() -> None:
    env = environment("temporal")
    mounted = mounts("temporal")
    config = script_variable("temporal-cluster.sh", "CONFIG")
    dynamic = script_variable("temporal-cluster.sh", "DYNAMIC_CONFIG")
    assert mounted[env["TEMPORAL_SERVER_CONFIG_FILE_PATH"]] == config
    assert mounted[env["DYNAMIC_CONFIG_FILE_PATH"]] == dynamic
    # Every variable the config template refuses to do without is set.
    template = (REPO / config).read_text()
    assert template.splitlines()[0] == "# enable-template"
    required = re.search(r"range list ((?:\"\w+\" ?)+)", template)
    assert required
    names = set(re.findall(r"\w+", required.group(1)))
    assert {"POSTGRES_SEEDS", "POSTGRES_PWD"} <= names <= set(env), names - set(env)


def test_the_one_shots_run_the_scripts_the_cluster_script_runs() -> None:
    for service, variable in (
        ("temporal-schema", "SETUP_SCHEMA"),
        ("temporal-namespace", "CREATE_NAMESPACE"),
    ):
        script = script_variable("temporal-cluster.sh", variable)
        command = SERVICES[service]["command"]
        assert mounts(service)[command[-1]] == script, service


def test_livekit_runs_with_the_config_the_real_server_script_renders() -> None:
    command = SERVICES["livekit"]["command"]
    config = command[command.index("--config") + 1]
    assert mounts("livekit")[config] == script_variable("livekit-real.sh", "BASE_CONFIG")


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_every_mounted_file_is_tracked_by_the_scripts_or_compose_only(service: str) -> None:
    """Mounted files are either read by a test script too, or listed here on purpose."""
    compose_only = {
        "deploy/sip.yaml"
    }  # livekit-sip.sh writes its own (LiveKit SIP is not built here)
    read_by_scripts = {
        script_variable("temporal-cluster.sh", name)
        for name in ("CONFIG", "DYNAMIC_CONFIG", "SETUP_SCHEMA", "CREATE_NAMESPACE")
    } | {script_variable("livekit-real.sh", "BASE_CONFIG")}
    for source in mounts(service).values():
        assert source in read_by_scripts | compose_only, f"{service}: {source}"
