"""Fixtures of the gpu tests: the fake NVML library, scenario files, the agent as a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .fakenvml import Scenario, build_library


@pytest.fixture(scope="session")
def fake_nvml_dir() -> Path:
    return build_library()


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    return Scenario(tmp_path / "scenario.txt")


AGENT = str(Path(sys.executable).parent / "spe-gpu-agent")


class AgentProcess:
    """``spe-gpu-agent`` running as its own process (stopped at teardown); its log in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen([AGENT, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def start_agent(tmp_path: Path):
    started: list[AgentProcess] = []

    def start(args: list[str], env: dict[str, str]) -> AgentProcess:
        agent = AgentProcess(args, env, tmp_path / f"agent-{len(started)}.log")
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()
