//! Logs and traces. Logs go to standard error, as text or (`RESETD_LOG_FORMAT=json`) one JSON
//! object per line; `RESETD_LOG` filters them. Traces go over OTLP/HTTP (protobuf) when the
//! OpenTelemetry variables ask for it (docs/operations.md, "Logs and traces").
//!
//! The spans (a request, the store, hashing, SMTP) are at DEBUG level, so that with traces off and
//! the default `info` filter no span is ever built: the request path costs what it did before.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What was started, to be flushed before the process exits.
pub struct Telemetry {
    #[cfg(feature = "otel")]
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered; called once at exit.
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.traces {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: sending the last traces failed: {e}");
            }
        }
    }
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn log_format(value: Option<&str>) -> Result<LogFormat, String> {
    match value.map(str::trim) {
        None | Some("") | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(format!(
            "RESETD_LOG_FORMAT: unknown format {other:?} (known: text, json)"
        )),
    }
}

/// Whether traces are exported, from the OpenTelemetry variables: on when an OTLP endpoint is
/// named or `OTEL_TRACES_EXPORTER=otlp`; off with `OTEL_TRACES_EXPORTER=none` or
/// `OTEL_SDK_DISABLED=true`. Unlike the specification's default (export to localhost:4318), an
/// unconfigured resetd exports nothing, so a plain start never sends data anywhere.
fn traces_wanted(get: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
    let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(false);
    }
    let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let wanted = match set("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
        None => endpoint,
        Some("none") => false,
        Some("otlp") => true,
        Some(other) => {
            return Err(format!(
                "OTEL_TRACES_EXPORTER: unsupported exporter {other:?} (supported: otlp, none)"
            ))
        }
    };
    if wanted {
        let protocol =
            set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or(set("OTEL_EXPORTER_OTLP_PROTOCOL"));
        match protocol.as_deref().map(str::trim) {
            None | Some("http/protobuf") => {}
            Some(other) => {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol {other:?} (supported: http/protobuf)"
                ))
            }
        }
        if !cfg!(feature = "otel") {
            return Err(
                "traces were asked for (OTEL_*) but this resetd was built without the otel feature"
                    .into(),
            );
        }
    }
    Ok(wanted)
}

/// Installs the log subscriber and, when configured, the trace exporter. Call before the tokio
/// runtime starts: the exporter's HTTP client runs on a thread of its own.
///
/// The log layer has no per-layer filter: `RESETD_LOG` is applied globally, by [`Gate`]. With
/// per-layer filters, a `tracing::enabled!` check that one filter refused and that no event then
/// followed (the store's span check in a worker's poll) left that refusal in the thread's filter
/// state, and the next log line on the thread (a request's) was dropped: CI lost one that way.
pub fn init() -> Result<Telemetry, String> {
    let get = |k: &str| std::env::var(k).ok();
    let format = log_format(get("RESETD_LOG_FORMAT").as_deref())?;
    let filter = EnvFilter::try_from_env("RESETD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let traces = traces_wanted(&get)?;
    let registry = logs(format, filter, traces, std::io::stderr);
    if !traces {
        registry
            .try_init()
            .map_err(|e| format!("cannot install the logger: {e}"))?;
        return Ok(Telemetry {
            #[cfg(feature = "otel")]
            traces: None,
        });
    }
    #[cfg(feature = "otel")]
    {
        let (provider, layer) = otel::layer()?;
        registry
            .with(layer)
            .try_init()
            .map_err(|e| format!("cannot install the logger: {e}"))?;
        Ok(Telemetry {
            traces: Some(provider),
        })
    }
    #[cfg(not(feature = "otel"))]
    Err("traces need the otel feature".into())
}

/// The log layer in `format` to `writer`, behind the global filter (see [`init`]).
fn logs<W>(
    format: LogFormat,
    filter: EnvFilter,
    spans: bool,
    writer: W,
) -> impl tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    // The log layer takes RESETD_LOG's level as its hint: without one it would raise the global
    // maximum to TRACE, and every `log` record and event callsite of the dependencies would then
    // be checked at run time (about 15 % of a `/healthz` answer, measured). Its filter enables
    // everything, so it never leaves a refusal behind in the thread's filter state.
    let hint = Layer::<tracing_subscriber::Registry>::max_level_hint(&filter);
    let registry = tracing_subscriber::registry().with(Gate {
        logs: filter,
        spans,
    });
    let everything = tracing_subscriber::filter::filter_fn(|_| true);
    let everything = match hint {
        Some(level) if !spans => everything.with_max_level_hint(level),
        _ => everything,
    };
    let layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_filter(everything)
            .boxed(),
        // Flat objects: the event's fields (request_id, route, status, micros...) at the top.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(everything)
            .boxed(),
    };
    registry.with(layer)
}

/// The crates whose spans are exported (the dependencies' own spans are not ours to send).
const OUR_CRATES: [&str; 5] = [
    "resetd",
    "resetd_server",
    "resetd_store",
    "resetd_mail",
    "resetd_core",
];

fn ours(target: &str) -> bool {
    OUR_CRATES
        .iter()
        .any(|c| target == *c || target.strip_prefix(c).is_some_and(|r| r.starts_with("::")))
}

/// The global filter: what `RESETD_LOG` enables, and with traces on also resetd's own spans
/// (DEBUG, so that with traces off none is ever built). Spans reach the log layer too, as the
/// context of the lines inside them; events pass only by `RESETD_LOG`.
struct Gate {
    logs: EnvFilter,
    spans: bool,
}

impl Gate {
    fn traced(&self, meta: &tracing::Metadata<'_>) -> bool {
        self.spans && meta.is_span() && ours(meta.target())
    }
}

impl<S> Layer<S> for Gate
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.traced(meta) {
            return tracing::subscriber::Interest::always();
        }
        Layer::<S>::register_callsite(&self.logs, meta)
    }

    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        self.traced(meta) || Layer::<S>::enabled(&self.logs, meta, ctx)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        if self.spans {
            return Some(tracing::level_filters::LevelFilter::TRACE);
        }
        Layer::<S>::max_level_hint(&self.logs)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.logs.on_new_span(attrs, id, ctx)
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.logs.on_record(id, values, ctx)
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.logs.on_enter(id, ctx)
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.logs.on_exit(id, ctx)
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.logs.on_close(id, ctx)
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    /// The OTLP/HTTP exporter; endpoint, headers, timeout and compression come from the
    /// `OTEL_EXPORTER_OTLP_*` variables, read by the exporter itself.
    pub fn layer<S>() -> Result<(SdkTracerProvider, impl Layer<S>), String>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build()
            // The error names the variable and the problem; header values are not in it.
            .map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|v| v.is_empty()) {
            resource = resource.with_service_name("resetd");
        }
        let resource = resource
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("resetd");
        let mut targets = Targets::new();
        for t in super::OUR_CRATES {
            targets = targets.with_target(t, tracing::Level::TRACE);
        }
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(targets);
        Ok((provider, layer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn a_refused_enabled_check_never_swallows_the_next_log_line() {
        let out = Captured::default();
        // The shape of the traced stack: the log layer, and a second layer filtered to resetd's
        // crates as the exporter is.
        let exporter = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("resetd", tracing::Level::TRACE),
            );
        let subscriber =
            logs(LogFormat::Json, EnvFilter::new("info"), true, out.clone()).with(exporter);
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..3 {
                // What the store does outside a request: ask, then build nothing.
                let _ = tracing::enabled!(tracing::Level::DEBUG);
                let _ =
                    tracing::enabled!(kind: tracing::metadata::Kind::SPAN, tracing::Level::DEBUG);
                tracing::info!(i, "request");
            }
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.lines().all(|l| l.contains(r#""message":"request""#)),
            "{text}"
        );
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn traces_follow_the_opentelemetry_variables() {
        assert!(!traces_wanted(&env(&[])).unwrap());
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        let traces_endpoint = (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces",
        );
        for on in [
            &[endpoint][..],
            &[traces_endpoint],
            &[("OTEL_TRACES_EXPORTER", "otlp")],
        ] {
            match traces_wanted(&env(on)) {
                Ok(wanted) => assert!(wanted && cfg!(feature = "otel")),
                // Asked for and not built in: a start error, not silence.
                Err(e) => assert!(!cfg!(feature = "otel") && e.contains("otel feature"), "{e}"),
            }
        }
        assert!(!traces_wanted(&env(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")])).unwrap());
        assert!(!traces_wanted(&env(&[endpoint, ("OTEL_SDK_DISABLED", "true")])).unwrap());
        let e = traces_wanted(&env(&[("OTEL_TRACES_EXPORTER", "zipkin")])).unwrap_err();
        assert!(e.contains("zipkin"), "{e}");
        let e =
            traces_wanted(&env(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).unwrap_err();
        assert!(e.contains("http/protobuf"), "{e}");
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        assert_eq!(log_format(None).unwrap(), LogFormat::Text);
        assert_eq!(log_format(Some("json")).unwrap(), LogFormat::Json);
        assert!(log_format(Some("xml")).unwrap_err().contains("text, json"));
    }
}
