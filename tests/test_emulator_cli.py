"""`python -m livekit_emulator`'s options: where the key pairs come from (never the command
line), one-line usage errors with exit code 2, and a help that documents every option."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from livekit_emulator.__main__ import (
    DEV_API_KEY,
    DEV_API_SECRET,
    Credentials,
    UsageError,
    build_parser,
    main,
    resolve_credentials,
)

SECRET = "file-secret-0123456789abcdef0123456789"


def resolve(*argv: str, **environ: str) -> Credentials:
    return resolve_credentials(build_parser().parse_args(list(argv)), environ)


def private_file(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    path = tmp_path / "secret"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_nothing_given_is_the_dev_pair_and_says_so() -> None:
    credentials = resolve()
    assert (credentials.api_key, credentials.api_secret) == (DEV_API_KEY, DEV_API_SECRET)
    assert "dev pair" in credentials.source


def test_key_pair_comes_from_the_environment() -> None:
    credentials = resolve(LIVEKIT_API_KEY="k", LIVEKIT_API_SECRET="s")
    assert (credentials.api_key, credentials.api_secret, credentials.source) == (
        "k",
        "s",
        "LIVEKIT_API_SECRET",
    )


def test_api_key_option_wins_over_the_environment() -> None:
    credentials = resolve("--api-key", "mine", LIVEKIT_API_KEY="env", LIVEKIT_API_SECRET="s")
    assert credentials.api_key == "mine"


def test_secret_file_is_read_and_wins_over_the_environment(tmp_path: Path) -> None:
    path = private_file(tmp_path, SECRET + "\n")
    credentials = resolve("--api-key", "k", "--api-secret-file", path, LIVEKIT_API_SECRET="env")
    assert credentials.api_secret == SECRET
    assert SECRET not in credentials.source


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = private_file(tmp_path, SECRET, mode=0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        resolve("--api-secret-file", path)


def test_missing_secret_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="No such file"):
        resolve("--api-secret-file", str(tmp_path / "absent"))


def test_a_key_other_than_the_dev_key_needs_its_secret() -> None:
    with pytest.raises(UsageError, match="has no secret"):
        resolve("--api-key", "mine")


def test_extra_pairs_come_from_the_environment_and_the_file(tmp_path: Path) -> None:
    path = private_file(tmp_path, "# comment\nk3:s3\n\n")
    credentials = resolve("--extra-keys-file", path, LIVEKIT_EMULATOR_EXTRA_KEYS="k1:s1, k2:s2")
    assert credentials.extra_keys == {"k1": "s1", "k2": "s2", "k3": "s3"}


def test_extra_keys_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = private_file(tmp_path, "k:s\n", mode=0o640)
    with pytest.raises(UsageError, match="group or others"):
        resolve("--extra-keys-file", path)


def test_malformed_extra_pair_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = private_file(tmp_path, "k1:s1\nno-colon-" + SECRET + "\n")
    with pytest.raises(UsageError, match="entry 2: expected KEY:SECRET") as err:
        resolve("--extra-keys-file", path)
    assert SECRET not in str(err.value)


def test_extra_pair_may_not_replace_the_main_key() -> None:
    with pytest.raises(UsageError, match="already the API key"):
        resolve(LIVEKIT_EMULATOR_EXTRA_KEYS=f"{DEV_API_KEY}:other")


@pytest.mark.parametrize("option", ["--api-secret", "--extra-key"])
def test_secret_options_are_refused_without_echoing_the_value(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([option, "k:" + SECRET]) == 2
    error = one_line_error(capsys)
    assert "is gone" in error and SECRET not in error


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "x"],
        ["--port", "70000"],
        ["--empty-timeout", "0"],
        ["--latency", "-1"],
        ["--webhook-url", "localhost:8080"],
        ["--trunk", ""],
        ["--log-level", "loud"],
        ["--unknown"],
    ],
)
def test_bad_option_value_exits_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert one_line_error(capsys).startswith("python -m livekit_emulator: ")


def test_bad_credentials_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--api-key", "mine"], environ={}) == 2
    assert "has no secret" in one_line_error(capsys)


def test_every_option_has_a_help_text() -> None:
    parser = build_parser()
    undocumented = [
        action.option_strings
        for action in parser._actions
        if action.help is None and action.option_strings
    ]
    assert undocumented == []


def test_help_ends_with_examples_and_says_where_secrets_come_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "LIVEKIT_API_SECRET" in out and "--api-secret-file" in out
    assert "--api-secret " not in out.replace("--api-secret-file", "")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`main` configures the root logger onto the test's captured stderr; put it back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_error(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    out, err = capsys.readouterr()
    assert err == ""
    answer: dict[str, str] = json.loads(out)
    return answer


def test_a_usage_error_with_json_is_a_json_object_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--json", "--port", "x"]) == 2
    answer = json_error(capsys)
    assert answer["error"] == "usage" and "--port" in answer["message"]


def test_bad_credentials_with_json_are_a_json_object_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--json", "--api-key", "mine"], environ={}) == 2
    assert "has no secret" in json_error(capsys)["message"]


def test_a_busy_port_with_json_is_a_json_object_on_stdout(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--json", "--port", str(port), "--log-level", "ERROR"], environ={})
    assert code == 1
    assert json_error(capsys)["error"] == "cannot_listen"


def test_help_names_the_command_it_is_run_as_and_its_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"], prog="meet-telephony emulator") == 0
    out = capsys.readouterr().out
    assert "  meet-telephony emulator --port 0 --json" in out and "python -m" not in out
    assert "exit codes: 0 " in out
