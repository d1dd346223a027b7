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
pub fn init() -> Result<Telemetry, String> {
    let get = |k: &str| std::env::var(k).ok();
    let format = log_format(get("RESETD_LOG_FORMAT").as_deref())?;
    let filter = EnvFilter::try_from_env("RESETD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        // Flat objects: the event's fields (request_id, route, status, micros...) at the top.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs);
    if !traces_wanted(&get)? {
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

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    /// The crates whose spans are exported (the dependencies' own spans are not ours to send).
    const TARGETS: [&str; 5] = [
        "resetd",
        "resetd_server",
        "resetd_store",
        "resetd_mail",
        "resetd_core",
    ];

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
        for t in TARGETS {
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
