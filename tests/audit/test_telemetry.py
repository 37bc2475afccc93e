"""OpenTelemetry: records become log records; reconcile/request spans, latency and counts."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spe_audit
from spe_audit import Act, AuditLog, AuditSettings, FsyncPolicy
from spe_audit.settings import TelemetrySettings
from spe_audit.telemetry import OTelAuditExporter, Telemetry

pytestmark = pytest.mark.audit


@pytest.fixture
def otel():
    spans, logs, reader = InMemorySpanExporter(), InMemoryLogRecordExporter(), InMemoryMetricReader()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    tel = Telemetry(tracer_provider=tp, meter_provider=MeterProvider(metric_readers=[reader]),
                    logger_provider=lp)
    yield tel, spans, logs, reader
    tel.shutdown()


def _points(reader, name):
    data = reader.get_metrics_data()
    out = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    out += list(m.data.data_points)
    return out


def test_every_record_is_a_log_record(tmp_path, otel, key):
    tel, spans, logs, _ = otel
    log = AuditLog(tmp_path / "a.jsonl", signing_key=key, checkpoint_every=2,
                   exporter=tel.audit_exporter(), fsync=FsyncPolicy.NEVER)
    with tel.reconcile("Workspace", "ws1", "spe-p1"):
        r1 = log.record("user:alice", Act.WORKSPACE_STARTED, target="Workspace/spe-p1/ws1", permit="p1",
                        details={"gpus": 1})
    log.record("user:bob", Act.EXPORT_DOWNLOADED, permit="p1", outcome="denied")
    log.close(checkpoint=False)
    got = [l.log_record for l in logs.get_finished_logs()]
    assert [g.attributes["spe.audit.action"] for g in got] == ["workspace.started", "export.downloaded",
                                                                "audit.checkpoint"]
    first = got[0]
    assert first.attributes["spe.audit.hash"] == r1.hash and first.attributes["spe.audit.seq"] == 1
    assert first.attributes["spe.audit.permit"] == "p1" and "spe.audit.dataset" not in first.attributes
    assert first.attributes["spe.audit.details"] == '{"gpus":1}'
    assert first.event_name == "spe.audit.workspace.started" and first.timestamp == r1.time_ns
    assert "user:alice workspace.started" in first.body
    assert got[1].severity_text == "WARN"
    # the record made inside the reconcile span carries its trace
    (span,) = spans.get_finished_spans()
    assert first.trace_id == span.context.trace_id and first.span_id == span.context.span_id


def test_a_raw_log_exporter_is_wrapped(tmp_path):
    exporter = InMemoryLogRecordExporter()
    log = AuditLog(tmp_path / "a.jsonl", exporter=exporter, fsync=FsyncPolicy.NEVER)
    log.record("user:a", Act.TOOL_APPROVED, target="Tool/jupyter")
    log.flush()
    assert len(exporter.get_finished_logs()) == 1
    log.close()


def test_nothing_is_exported_without_an_endpoint(tmp_path):
    tel = Telemetry.from_settings(TelemetrySettings())
    assert not tel.enabled and tel.audit_exporter() is None
    with tel.reconcile("DataPermit", "p1"):  # a no-op, but usable
        pass
    spe_audit.configure(AuditSettings(path=tmp_path / "a.jsonl", fsync="never"))
    try:
        assert spe_audit.default()._exporter is None
        assert not spe_audit.telemetry.current().enabled
    finally:
        spe_audit.shutdown()


def test_endpoint_builds_otlp_exporters_without_connecting():
    tel = Telemetry.from_settings(TelemetrySettings(otlp_endpoint="http://127.0.0.1:9/", metric_interval_s=3600))
    try:
        assert tel.enabled and isinstance(tel.audit_exporter(), OTelAuditExporter)
    finally:
        tel.shutdown()


def test_reconcile_span_latency_and_count(otel):
    tel, spans, _, reader = otel
    with tel.reconcile("Workspace", "ws1", "spe-p1"):
        pass
    with pytest.raises(RuntimeError):
        with tel.reconcile("Workspace", "ws2", "spe-p1"):
            raise RuntimeError("boom")
    names = [s.name for s in spans.get_finished_spans()]
    assert names == ["reconcile Workspace", "reconcile Workspace"]
    failed = spans.get_finished_spans()[1]
    assert failed.status.status_code.name == "ERROR" and failed.attributes["k8s.object.name"] == "ws2"
    counts = {p.attributes["spe.outcome"]: p.value for p in _points(reader, "spe.reconcile.count")}
    assert counts == {"success": 1, "error": 1}
    hist = _points(reader, "spe.reconcile.duration")
    assert sum(p.count for p in hist) == 2 and all(p.sum >= 0 for p in hist)


async def test_reconciler_decorator_on_async_handler(otel):
    tel, spans, _, reader = otel

    @tel.reconciler("DataPermit")
    async def on_permit(name, namespace=None, **_):
        await asyncio.sleep(0)
        return f"done {name}"

    assert await on_permit(name="p1", namespace=None) == "done p1"
    assert spans.get_finished_spans()[0].attributes["k8s.object.name"] == "p1"
    assert _points(reader, "spe.reconcile.count")[0].attributes["spe.kind"] == "DataPermit"


def test_request_span_and_metrics(otel):
    tel, spans, _, reader = otel
    with tel.request("POST", "/api/requests"):
        pass
    (span,) = spans.get_finished_spans()
    assert span.name == "POST /api/requests" and span.kind.name == "SERVER"
    (point,) = _points(reader, "spe.request.count")
    assert point.attributes["http.route"] == "/api/requests" and point.value == 1
