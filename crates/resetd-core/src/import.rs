//! One row of a people import (CSV or JSON Lines), checked field by field. Surfaces turn their
//! input into a JSON object per row; [`ImportRow::from_json`] is the one place that decides what
//! a row may contain, so the CLI and the API refuse the same rows for the same reasons.

use serde_json::{Map, Value};

use crate::foreign::ForeignHash;
use crate::types::{DisplayName, Email, Locale, Login};

/// The fields a row may carry.
pub const FIELDS: &[&str] = &[
    "login",
    "email",
    "display_name",
    "first_name",
    "last_name",
    "locale",
    "enabled",
    "verified",
    "roles",
    "attributes",
    "password_hash",
];

/// A checked import row.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// Login (the upsert key).
    pub login: Login,
    /// Email.
    pub email: Email,
    /// Display name (or first and last name joined by a space).
    pub display_name: Option<DisplayName>,
    /// Locale.
    pub locale: Option<Locale>,
    /// Enabled (default true).
    pub enabled: bool,
    /// Email confirmed (default false).
    pub verified: bool,
    /// Roles.
    pub roles: Vec<String>,
    /// Attributes (a JSON object).
    pub attributes: Value,
    /// The existing password hash, recognised and bounded.
    pub password_hash: Option<ForeignHash>,
}

fn text<'a>(row: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(_) => Err(format!("{key}: must be a string")),
    }
}

fn flag(row: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(default),
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!("{key}: must be true or false")),
        },
        Some(_) => Err(format!("{key}: must be true or false")),
    }
}

impl ImportRow {
    /// Checks one row given as a JSON object. In the error text: the field and the reason, never
    /// a password hash.
    pub fn from_json(row: &Value) -> Result<Self, String> {
        let Value::Object(row) = row else {
            return Err("a row must be a JSON object".into());
        };
        if let Some(k) = row.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!("unknown field {k:?}"));
        }
        let bad = |e: crate::types::InvalidInput| e.to_string();
        let login = Login::parse(text(row, "login")?.ok_or("login: missing")?).map_err(bad)?;
        let email = Email::parse(text(row, "email")?.ok_or("email: missing")?).map_err(bad)?;
        let name = match text(row, "display_name")? {
            Some(n) => Some(n.to_owned()),
            None => {
                let parts: Vec<&str> = [text(row, "first_name")?, text(row, "last_name")?]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            }
        };
        let display_name = name
            .map(|n| DisplayName::parse(&n))
            .transpose()
            .map_err(bad)?;
        let locale = text(row, "locale")?
            .map(Locale::parse)
            .transpose()
            .map_err(bad)?;
        let roles = match row.get("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s
                .split(';')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("roles: must be strings")?,
            Some(_) => return Err("roles: must be a list of strings".into()),
        };
        let attributes = match row.get("attributes") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map_err(|_| "attributes: must be a JSON object".to_owned())?,
            Some(v) => v.clone(),
        };
        crate::service::check_attributes(&attributes, &roles).map_err(|e| e.to_string())?;
        let password_hash = text(row, "password_hash")?
            .map(ForeignHash::parse)
            .transpose()
            .map_err(|e| format!("password_hash: {e}"))?;
        Ok(Self {
            login,
            email,
            display_name,
            locale,
            enabled: flag(row, "enabled", true)?,
            verified: flag(row, "verified", false)?,
            roles,
            attributes,
            password_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_checked_and_reasons_never_echo_the_hash() {
        let ok = ImportRow::from_json(&json!({"login": "ann", "email": "ann@example.org",
            "first_name": "Ann", "last_name": "Lee", "roles": "a; b", "enabled": "0"}))
        .unwrap();
        assert_eq!(ok.display_name.unwrap().as_str(), "Ann Lee");
        assert_eq!(ok.roles, vec!["a", "b"]);
        assert!(!ok.enabled);
        let e = ImportRow::from_json(
            &json!({"login": "x", "email": "x@example.org", "password_hash": "$1$secretsalt$h"}),
        )
        .unwrap_err();
        assert!(
            e.starts_with("password_hash:") && !e.contains("secretsalt"),
            "{e}"
        );
        let e = ImportRow::from_json(&json!({"login": "x", "emial": "x@example.org"})).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        assert!(ImportRow::from_json(&json!({"email": "x@example.org"})).is_err());
    }
}

/// The longest line an import accepts (64 KiB); longer lines are rejected, not buffered.
pub const MAX_LINE: usize = 64 * 1024;
/// Rows per store call (one transaction).
pub const BATCH: usize = 500;

/// The input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated, a header line first naming the [`FIELDS`]; one record per line
    /// (RFC 4180 quoting with `""`, but no line breaks inside fields).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// Parses `csv` or `jsonl`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

/// A refused line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// 1-based line number in the input.
    pub line: u64,
    /// Why (never the password hash).
    pub reason: String,
}

/// The outcome of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// People created (or that would be, in a dry run).
    pub imported: u64,
    /// People updated (matched by login).
    pub updated: u64,
    /// Lines refused.
    pub rejected: u64,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// Splits one CSV record (RFC 4180 quoting, no line breaks inside fields).
pub fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("malformed CSV quoting".into());
                }
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            (_, c) => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("unterminated CSV quote".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// Feeds lines to [`crate::Service::import_people`] in batches of [`BATCH`], collecting the
/// summary; each surface reads its input line by line and reports rejections as they come.
pub struct Importer<'a> {
    service: &'a crate::Service,
    tenant: crate::types::TenantId,
    actor: crate::service::Actor,
    format: Format,
    dry_run: bool,
    header: Option<Vec<String>>,
    batch: Vec<ImportRow>,
    summary: Summary,
    rejections: Vec<Rejection>,
}

impl<'a> Importer<'a> {
    /// An import into `tenant`.
    pub fn new(
        service: &'a crate::Service,
        tenant: crate::types::TenantId,
        actor: crate::service::Actor,
        format: Format,
        dry_run: bool,
    ) -> Self {
        Self {
            service,
            tenant,
            actor,
            format,
            dry_run,
            header: None,
            batch: Vec::with_capacity(BATCH),
            summary: Summary {
                dry_run,
                ..Summary::default()
            },
            rejections: Vec::new(),
        }
    }

    /// Refuses line `line` for `reason` (e.g. a line too long for the reader).
    pub fn reject(&mut self, line: u64, reason: impl Into<String>) {
        self.summary.rejected += 1;
        self.rejections.push(Rejection {
            line,
            reason: reason.into(),
        });
    }

    /// Takes the rejections recorded since the last call, for the caller to report.
    pub fn take_rejections(&mut self) -> Vec<Rejection> {
        std::mem::take(&mut self.rejections)
    }

    /// The counts so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Processes line `line` (without its line break); blank lines are skipped. Fails only when
    /// the store or the tenant does; bad rows become rejections.
    pub async fn line(&mut self, line: u64, text: &str) -> Result<(), crate::CoreError> {
        let text = text.strip_suffix('\r').unwrap_or(text);
        let text = if line == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        let row = match self.format {
            Format::Jsonl => serde_json::from_str::<Value>(text)
                .map_err(|e| format!("invalid JSON at column {}", e.column())),
            Format::Csv => match split_csv(text) {
                Err(e) => Err(e),
                Ok(fields) => match &self.header {
                    None => {
                        let fields: Vec<String> =
                            fields.iter().map(|f| f.trim().to_owned()).collect();
                        if let Some(f) = fields.iter().find(|f| !FIELDS.contains(&f.as_str())) {
                            return Err(crate::types::InvalidInput::new(
                                "header",
                                format!("unknown CSV column {f:?}"),
                            )
                            .into());
                        }
                        self.header = Some(fields);
                        return Ok(());
                    }
                    Some(h) if h.len() != fields.len() => Err(format!(
                        "{} fields where the header names {}",
                        fields.len(),
                        h.len()
                    )),
                    Some(h) => Ok(Value::Object(
                        h.iter()
                            .cloned()
                            .zip(fields.into_iter().map(Value::String))
                            .collect(),
                    )),
                },
            },
        };
        match row.and_then(|r| ImportRow::from_json(&r)) {
            Ok(row) => {
                self.batch.push(row);
                if self.batch.len() >= BATCH {
                    self.flush().await?;
                }
            }
            Err(reason) => self.reject(line, reason),
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), crate::CoreError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let inserted = self
            .service
            .import_people(&self.tenant, rows, self.dry_run, &self.actor)
            .await?;
        for i in inserted {
            if i {
                self.summary.imported += 1;
            } else {
                self.summary.updated += 1;
            }
        }
        Ok(())
    }

    /// Writes the last batch and returns the summary.
    pub async fn finish(mut self) -> Result<Summary, crate::CoreError> {
        self.flush().await?;
        Ok(self.summary)
    }
}
