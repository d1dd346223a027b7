//! Helpers both backends' SQL uses the same way, so that SQLite and PostgreSQL encode, bound and
//! cut values identically.

use resetd_core::ports::StoreError;

/// Longest `last_error` kept for an outbox message, in characters.
/// The span of one store call (`operation`: read, write, or the SQL verb) on `system`, as a child
/// of the caller's span. Outside a traced operation (the workers' polling) there is none, so an
/// idle service sends no traces; with traces off this costs one callsite check. The check asks
/// for a span (it is one that may be built), not an event: the log filter has no say over spans.
pub(crate) fn span(system: &'static str, operation: &'static str) -> tracing::Span {
    if !tracing::enabled!(kind: tracing::metadata::Kind::SPAN, tracing::Level::DEBUG)
        || tracing::Span::current().is_none()
    {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        "store",
        otel.name = format!("store.{operation}"),
        otel.kind = "client",
        db.system.name = system,
        db.operation.name = operation,
    )
}

pub(crate) const MAX_ERROR_CHARS: usize = 500;

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding JSON: {e}")))
}

pub(crate) fn limit(n: u32) -> i64 {
    i64::from(n)
}

/// `NotFound` when a statement that names one row changed none. Generic because the drivers count
/// changed rows in different types (`usize` for rusqlite, `u64` for tokio-postgres).
pub(crate) fn found<N: PartialEq + From<u8>>(changed: N) -> Result<(), StoreError> {
    if changed == N::from(0) {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// What a `Lookup::LoginAnyCase` query found (at most two rows, an exact login first): the exact
/// login, else the only fold match; two fold matches and no exact one name nobody.
pub(crate) fn pick_any_case(
    mut found: Vec<resetd_core::model::Person>,
    login: &str,
) -> Option<resetd_core::model::Person> {
    if found.first().is_some_and(|p| p.login.as_str() == login) || found.len() == 1 {
        found.into_iter().next()
    } else {
        found.clear();
        None
    }
}

/// `error` cut to [`MAX_ERROR_CHARS`] characters (on a character boundary).
pub(crate) fn truncate_error(error: &str) -> &str {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => &error[..i],
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_truncated_on_char_boundaries() {
        let long = "é".repeat(600);
        assert_eq!(truncate_error(&long).chars().count(), MAX_ERROR_CHARS);
        assert_eq!(truncate_error("short"), "short");
    }
}
