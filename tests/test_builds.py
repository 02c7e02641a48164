"""`tests/fixtures/builds.py`: how tests read the state of a server build running beside them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.fixtures import builds


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(builds, "STATE_DIR", tmp_path)
    monkeypatch.setattr(builds, "POLL_SECONDS", 0.01)
    return tmp_path


def test_no_state_file_means_no_build(state_dir: Path) -> None:
    assert builds.state("helm") is None and not builds.pending("helm")


def test_a_build_whose_process_runs_is_pending(state_dir: Path) -> None:
    (state_dir / "helm").write_text(f"building {os.getpid()}\n")

    assert builds.pending("helm")


def test_a_build_whose_process_died_without_a_verdict_counts_as_none(state_dir: Path) -> None:
    (state_dir / "helm").write_text("building 999999999\n")

    assert builds.state("helm") is None


def test_waiting_returns_the_verdict_once_written(state_dir: Path) -> None:
    (state_dir / "helm").write_text(f"building {os.getpid()}\n")
    timer = threading.Timer(0.1, (state_dir / "helm").write_text, args=("failed\n",))
    timer.start()

    assert builds.wait("helm") == builds.FAILED
    timer.join()


def test_a_failed_build_names_its_log_and_a_built_one_nothing(state_dir: Path) -> None:
    (state_dir / "livekit").write_text("failed\n")
    (state_dir / "helm").write_text("built\n")

    assert builds.failed_reason("livekit", "not built") == (
        "not built (its build failed: .cache/livekit-install.log)"
    )
    assert builds.failed_reason("helm", "not built") is None
