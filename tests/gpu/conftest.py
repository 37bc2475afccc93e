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


# --- on the local control plane --------------------------------------------------------------

import secrets  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

import yaml  # noqa: E402

from spe_dev.nodes import GPU_PRODUCT_LABEL, FakeNode, node_manifest  # noqa: E402
from tests.fixtures.operator import MANIFESTS_BASE, service_account_kubeconfig  # noqa: E402
from tests.fixtures.waiting import wait_for  # noqa: E402
# The workspace tests' fixtures (a Tool, a Ready Dataset, a fresh permit per test).
from tests.workspace.conftest import dataset_name, kube, suffix, tool_name, ws_env  # noqa: E402,F401

AGENT_SA = ("spe-system", "spe-gpu-agent")


@pytest.fixture(scope="session")
def gpu_agent_kubeconfig(cluster, tmp_path_factory) -> str:
    """A kubeconfig with a token of the agent's ServiceAccount, its RBAC and admission policy
    applied from manifests/base/gpu-agent.yaml: every test proves them sufficient (and tight)."""
    docs = [d for d in yaml.safe_load_all((MANIFESTS_BASE / "gpu-agent.yaml").read_text()) if d and d["kind"] != "DaemonSet"]
    namespaces = [d for d in yaml.safe_load_all((MANIFESTS_BASE / "namespace.yaml").read_text()) if d]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=spe-tests", "-f", "-",
                    input=yaml.safe_dump_all([*namespaces, *docs]), check=True)
    path = tmp_path_factory.mktemp("gpu-agent-identity") / "spe-gpu-agent.kubeconfig"
    return str(service_account_kubeconfig(cluster, *AGENT_SA, path))


def make_gpu_node(cluster, name: str, gpus: int, product: str | None, labels: dict[str, str] | None = None) -> dict:
    """A kwok GPU node of this test session (its own model name, so only this test's
    workspaces land on it); ``product=None``: without the GPU labels (as before any labelling)."""
    node = node_manifest(FakeNode(name, 100 + secrets.randbelow(150), cpu="32", memory="128Gi", gpus=gpus,
                                  gpu_product=product))
    if product is None:
        for key in (GPU_PRODUCT_LABEL, "nvidia.com/gpu.count"):
            node["metadata"]["labels"].pop(key)
    node["metadata"]["labels"].update(labels or {})
    node["metadata"]["labels"]["spe.ehds.io/test"] = "true"
    api = cluster.api()
    api.create("/api/v1/nodes", node)  # as spe-dev makes its nodes (a Node's status is kept on create)

    def ready():
        got = api.get_or_none(f"/api/v1/nodes/{name}")
        conds = ((got or {}).get("status") or {}).get("conditions") or []
        return got if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else None
    return wait_for(f"kwok node {name} Ready", ready, timeout=60)


@pytest.fixture
def gpu_nodes(cluster):
    made: list[str] = []

    def make(name: str, gpus: int, product: str | None, labels: dict[str, str] | None = None) -> dict:
        made.append(name)
        return make_gpu_node(cluster, name, gpus, product, labels)

    yield make
    for name in made:
        cluster.kubectl("delete", "node", name, "--ignore-not-found", "--wait=false")


class OtlpReceiver:
    """A minimal OTLP/HTTP metrics endpoint: keeps every ExportMetricsServiceRequest."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        self.requests: list = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = ExportMetricsServiceRequest()
                req.ParseFromString(body)
                outer.requests.append(req)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def points(self, metric: str) -> list[tuple[dict, float]]:
        """(attributes, value) of every data point of ``metric`` received so far."""
        out = []
        for req in list(self.requests):
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name != metric:
                            continue
                        data = m.gauge.data_points if m.HasField("gauge") else m.sum.data_points
                        for p in data:
                            attrs = {a.key: (a.value.string_value or a.value.int_value) for a in p.attributes}
                            value = p.as_double if p.HasField("as_double") else p.as_int
                            out.append((attrs, value))
        return out

    def latest(self, metric: str, **attrs) -> float | None:
        found = [v for a, v in self.points(metric) if all(a.get(k) == w for k, w in attrs.items())]
        return found[-1] if found else None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def otlp():
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()
