"""OpenTelemetry for the SPE components: audit records as log records, spans around
reconciles and requests, and reconcile/request latency histograms and counters.

With no OTLP endpoint configured, :meth:`Telemetry.from_settings` gives a disabled instance:
no providers, no threads, no network, and the helpers cost a ``perf_counter`` call.

Metric names (attributes ``spe.kind`` / ``http.request.method`` + ``http.route``, and
``spe.outcome``):

- ``spe.reconcile.duration`` (histogram, s), ``spe.reconcile.count`` (counter)
- ``spe.request.duration`` (histogram, s), ``spe.request.count`` (counter)
"""

from __future__ import annotations

import functools
import inspect
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from opentelemetry import metrics as _metrics
from opentelemetry import trace as _trace
from opentelemetry._logs.severity import SeverityNumber

from .record import Record

if TYPE_CHECKING:
    from .settings import TelemetrySettings

SCOPE = "spe_audit"


class OTelAuditExporter:
    """Emits each audit record as one OpenTelemetry log record (event ``spe.audit.<action>``)."""

    def __init__(self, logger_provider: Any, *, owns_provider: bool = False):
        self._provider = logger_provider
        self._owns_provider = owns_provider
        self._logger = logger_provider.get_logger(SCOPE)

    @classmethod
    def from_log_exporter(cls, exporter: Any, *, service_name: str = "spe-operator",
                          batch: bool = True) -> "OTelAuditExporter":
        """Wrap a ``LogRecordExporter`` (OTLP, in-memory) in a provider of its own."""
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        provider = LoggerProvider(resource=Resource.create({"service.name": service_name}))
        proc = BatchLogRecordProcessor(exporter) if batch else SimpleLogRecordProcessor(exporter)
        provider.add_log_record_processor(proc)
        return cls(provider, owns_provider=True)

    def export_record(self, record: Record) -> None:
        attrs: dict[str, Any] = {
            "spe.audit.seq": record.seq, "spe.audit.time": record.time,
            "spe.audit.actor": record.actor, "spe.audit.action": record.action,
            "spe.audit.outcome": record.outcome, "spe.audit.prev": record.prev,
            "spe.audit.hash": record.hash,
        }
        for key in ("target", "permit", "dataset"):
            value = getattr(record, key)
            if value is not None:
                attrs[f"spe.audit.{key}"] = value
        if record.details:
            from .record import canonical
            attrs["spe.audit.details"] = canonical(record.details).decode("utf-8")
        ok = record.outcome == "success"
        self._logger.emit(
            timestamp=record.time_ns, body=_summary(record), attributes=attrs,
            event_name=f"spe.audit.{record.action}",
            severity_number=SeverityNumber.INFO if ok else SeverityNumber.WARN,
            severity_text="INFO" if ok else "WARN")

    def flush(self) -> None:
        self._provider.force_flush()

    def shutdown(self) -> None:
        if self._owns_provider:  # a shared provider belongs to its Telemetry
            self._provider.shutdown()


def _summary(r: Record) -> str:
    parts = [f"{r.actor} {r.action}"]
    if r.target:
        parts.append(r.target)
    if r.permit:
        parts.append(f"permit={r.permit}")
    if r.dataset:
        parts.append(f"dataset={r.dataset}")
    parts.append(f"-> {r.outcome}")
    return " ".join(parts)


class Telemetry:
    """Tracer, meter and logger for one component. Build once at start-up and pass down."""

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None,
                 logger_provider: Any = None):
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self._tracer = (tracer_provider or _trace.NoOpTracerProvider()).get_tracer(SCOPE)
        meter = (meter_provider or _metrics.NoOpMeterProvider()).get_meter(SCOPE)
        self._rec_hist = meter.create_histogram(
            "spe.reconcile.duration", unit="s", description="time one reconcile took")
        self._rec_count = meter.create_counter(
            "spe.reconcile.count", unit="{reconcile}", description="reconciles, by kind and outcome")
        self._req_hist = meter.create_histogram(
            "spe.request.duration", unit="s", description="time one HTTP request took")
        self._req_count = meter.create_counter(
            "spe.request.count", unit="{request}", description="HTTP requests, by route and outcome")

    @property
    def enabled(self) -> bool:
        return any((self.tracer_provider, self.meter_provider, self.logger_provider))

    @classmethod
    def disabled(cls) -> "Telemetry":
        return cls()

    @classmethod
    def from_settings(cls, settings: "TelemetrySettings") -> "Telemetry":
        """OTLP/HTTP exporters for logs, traces and metrics when an endpoint is set; else disabled."""
        if not settings.otlp_endpoint:
            return cls.disabled()
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        base = settings.otlp_endpoint.rstrip("/")
        common = {"headers": dict(settings.headers), "timeout": settings.timeout_s}
        resource = Resource.create({"service.name": settings.service_name})
        tracer = TracerProvider(resource=resource)
        tracer.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", **common)))
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics", **common),
            export_interval_millis=int(settings.metric_interval_s * 1000))
        meter = MeterProvider(resource=resource, metric_readers=[reader])
        logger = LoggerProvider(resource=resource)
        logger.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs", **common)))
        return cls(tracer_provider=tracer, meter_provider=meter, logger_provider=logger)

    def audit_exporter(self) -> OTelAuditExporter | None:
        """The exporter to give ``AuditLog``; None when logs go nowhere."""
        return OTelAuditExporter(self.logger_provider) if self.logger_provider else None

    @contextmanager
    def reconcile(self, kind: str, name: str, namespace: str | None = None) -> Iterator[Any]:
        """A span ``reconcile <kind>`` around one reconcile, plus its latency and count.

        ``with telemetry.reconcile("Workspace", name, namespace): ...`` works in sync and async code.
        """
        attrs = {"spe.kind": kind, "k8s.object.name": name}
        if namespace:
            attrs["k8s.namespace.name"] = namespace
        with self._measure(f"reconcile {kind}", attrs, {"spe.kind": kind},
                           self._rec_hist, self._rec_count) as span:
            yield span

    @contextmanager
    def request(self, method: str, route: str) -> Iterator[Any]:
        """A server span ``<METHOD> <route>`` around one HTTP request, plus its latency and count."""
        attrs = {"http.request.method": method, "http.route": route}
        with self._measure(f"{method} {route}", attrs, dict(attrs), self._req_hist, self._req_count,
                           kind=_trace.SpanKind.SERVER) as span:
            yield span

    def reconciler(self, kind: str):
        """Decorator for a Kopf handler (sync or async): wraps it in :meth:`reconcile`,
        taking ``name`` and ``namespace`` from the handler's keyword arguments."""
        def wrap(fn):
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def awrapper(*args, **kwargs):
                    with self.reconcile(kind, str(kwargs.get("name", "")), kwargs.get("namespace")):
                        return await fn(*args, **kwargs)
                return awrapper

            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                with self.reconcile(kind, str(kwargs.get("name", "")), kwargs.get("namespace")):
                    return fn(*args, **kwargs)
            return wrapper
        return wrap

    @contextmanager
    def _measure(self, span_name, span_attrs, metric_attrs, hist, counter, kind=_trace.SpanKind.INTERNAL):
        start = time.perf_counter()
        outcome = "success"
        try:
            with self._tracer.start_as_current_span(span_name, kind=kind, attributes=span_attrs) as span:
                yield span
        except BaseException as e:
            outcome = "cancelled" if type(e).__name__ == "CancelledError" else "error"
            raise
        finally:
            attrs = {**metric_attrs, "spe.outcome": outcome}
            hist.record(time.perf_counter() - start, attrs)
            counter.add(1, attrs)

    def shutdown(self) -> None:
        for p in (self.tracer_provider, self.meter_provider, self.logger_provider):
            if p is not None:
                p.shutdown()


_current: Telemetry | None = None


def current() -> Telemetry:
    """The process-wide telemetry set by ``spe_audit.configure`` (disabled until then)."""
    global _current
    if _current is None:
        _current = Telemetry.disabled()
    return _current


def set_current(telemetry: Telemetry | None) -> None:
    global _current
    _current = telemetry
