//! OpenTelemetry metrics and spans, through the `opentelemetry` API.
//!
//! With [`WrapperConfiguration::observability_enabled`](crate::WrapperConfiguration) on,
//! the wrapper records into the *global* meter and tracer providers
//! (`opentelemetry::global::set_meter_provider` / `set_tracer_provider`), so an
//! application installs its own SDK and exporter (OTLP, Prometheus, stdout, ...) before
//! creating the wrapper. The instrumentation scope is `arrow-zerobus-sdk-wrapper`. With it
//! off, nothing is recorded (no instruments are created).
//!
//! # Metrics
//! Every data point carries `zerobus.table` (the table name).
//!
//! | name | kind | unit | what |
//! |---|---|---|---|
//! | `zerobus.rows.sent` | counter | `{row}` | rows acknowledged (durable) |
//! | `zerobus.rows.failed` | counter | `{row}` | rows that ended in `failed_rows`; `error.type` = the error variant |
//! | `zerobus.batches` | counter | `{batch}` | batches processed |
//! | `zerobus.bytes.sent` | counter | `By` | encoded bytes of the acknowledged rows |
//! | `zerobus.encode.duration` | histogram | `s` | time to encode one batch |
//! | `zerobus.send.duration` | histogram | `s` | `send_batch` / `submit_batch` to durable ack |
//! | `zerobus.retries` | counter | `{retry}` | requests sent again, and stream openings retried |
//! | `zerobus.reconnects` | counter | `{reconnect}` | streams re-created by the wrapper after one failed for good |
//!
//! The SDK's own in-stream recovery of a protobuf stream is not visible through its API,
//! so `zerobus.reconnects` counts the wrapper's re-creations only.
//!
//! # Spans
//! `send_batch` (child of the caller's current OpenTelemetry context) with children
//! `encode`, `transmit` (queueing on the stream) and `ack` (waiting until durable). The
//! root span carries `zerobus.table`, `zerobus.rows`, `zerobus.rows.failed`, and an error
//! status when any row failed or the batch was refused.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, InstrumentationScope, KeyValue};

use crate::config::WrapperConfiguration;
use crate::error::ZerobusError;
use crate::result::TransmissionResult;

/// The instrumentation scope name of every metric and span.
pub const SCOPE: &str = "arrow-zerobus-sdk-wrapper";

const TABLE: &str = "zerobus.table";

/// The wrapper's instruments; a no-op when observability is off. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Telemetry {
    instruments: Option<Arc<Instruments>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("enabled", &self.instruments.is_some())
            .finish()
    }
}

struct Instruments {
    table: [KeyValue; 1],
    tracer: BoxedTracer,
    rows_sent: Counter<u64>,
    rows_failed: Counter<u64>,
    batches: Counter<u64>,
    bytes_sent: Counter<u64>,
    encode_duration: Histogram<f64>,
    send_duration: Histogram<f64>,
    retries: Counter<u64>,
    reconnects: Counter<u64>,
}

impl Telemetry {
    /// Instruments from the global providers when `config` turns observability on.
    pub(crate) fn from_config(config: &WrapperConfiguration) -> Self {
        if !config.observability_enabled {
            return Self::default();
        }
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = global::meter_with_scope(scope.clone());
        let counter = |name: &'static str, unit: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build()
        };
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .build()
        };
        Self {
            instruments: Some(Arc::new(Instruments {
                table: [KeyValue::new(TABLE, config.table_name.clone())],
                tracer: global::tracer_with_scope(scope),
                rows_sent: counter("zerobus.rows.sent", "{row}", "Rows acknowledged"),
                rows_failed: counter("zerobus.rows.failed", "{row}", "Rows that failed"),
                batches: counter("zerobus.batches", "{batch}", "Batches processed"),
                bytes_sent: counter("zerobus.bytes.sent", "By", "Encoded bytes acknowledged"),
                encode_duration: seconds("zerobus.encode.duration", "Encoding time per batch"),
                send_duration: seconds("zerobus.send.duration", "Batch send to durable ack"),
                retries: counter("zerobus.retries", "{retry}", "Resends and retried opens"),
                reconnects: counter("zerobus.reconnects", "{reconnect}", "Streams re-created"),
            })),
        }
    }

    /// Counts `n` retries (records sent again, stream openings retried).
    pub(crate) fn retries(&self, n: u64) {
        if let Some(i) = &self.instruments {
            if n > 0 {
                i.retries.add(n, &i.table);
            }
        }
    }

    /// Counts one stream re-created after the previous one failed for good.
    pub(crate) fn reconnect(&self) {
        if let Some(i) = &self.instruments {
            i.reconnects.add(1, &i.table);
        }
    }

    /// Records one batch's encoding time.
    pub(crate) fn encoded(&self, elapsed: Duration) {
        if let Some(i) = &self.instruments {
            i.encode_duration.record(elapsed.as_secs_f64(), &i.table);
        }
    }

    /// Records a finished batch: rows, bytes, failures by error type, latency.
    pub(crate) fn batch_done(&self, result: &TransmissionResult, elapsed: Duration) {
        let Some(i) = &self.instruments else {
            return;
        };
        i.batches.add(1, &i.table);
        i.rows_sent.add(result.successful_count as u64, &i.table);
        i.bytes_sent.add(result.batch_size_bytes as u64, &i.table);
        for (error_type, rows) in result.group_errors_by_type() {
            let attributes = [i.table[0].clone(), KeyValue::new("error.type", error_type)];
            i.rows_failed.add(rows.len() as u64, &attributes);
        }
        i.send_duration.record(elapsed.as_secs_f64(), &i.table);
    }

    /// Starts the `send_batch` span of a batch of `rows` rows.
    pub(crate) fn start_batch(&self, rows: usize) -> BatchTrace {
        let Some(i) = &self.instruments else {
            return BatchTrace { context: None };
        };
        let mut span = i.tracer.start("send_batch");
        span.set_attribute(i.table[0].clone());
        span.set_attribute(KeyValue::new("zerobus.rows", rows as i64));
        BatchTrace {
            context: Some((Context::current_with_span(span), self.clone())),
        }
    }
}

/// The `send_batch` span of one batch and the means to start its phases.
pub(crate) struct BatchTrace {
    context: Option<(Context, Telemetry)>,
}

/// One phase span (`encode`, `transmit`, `ack`); ends when dropped or [`end`](Self::end)ed.
pub(crate) struct PhaseSpan(Option<BoxedSpan>);

impl PhaseSpan {
    /// Ends the phase now.
    pub(crate) fn end(self) {}
}

impl Drop for PhaseSpan {
    fn drop(&mut self) {
        if let Some(span) = &mut self.0 {
            span.end();
        }
    }
}

impl BatchTrace {
    /// Starts the phase `name` as a child of the `send_batch` span.
    pub(crate) fn phase(&self, name: &'static str) -> PhaseSpan {
        PhaseSpan(self.context.as_ref().and_then(|(context, telemetry)| {
            let i = telemetry.instruments.as_ref()?;
            Some(i.tracer.start_with_context(name, context))
        }))
    }

    /// Ends the span of a batch refused as a whole.
    pub(crate) fn fail(self, error: &ZerobusError) {
        if let Some((context, _)) = self.context {
            let span = context.span();
            span.set_status(Status::error(error.to_string()));
            span.end();
        }
    }

    /// Ends the span with the batch's outcome.
    pub(crate) fn finish(self, result: &TransmissionResult) {
        if let Some((context, _)) = self.context {
            let span = context.span();
            span.set_attribute(KeyValue::new(
                "zerobus.rows.failed",
                result.failed_count as i64,
            ));
            if result.failed_count > 0 {
                span.set_status(Status::error(format!(
                    "{} of {} rows failed",
                    result.failed_count, result.total_rows
                )));
            }
            span.end();
        }
    }
}
