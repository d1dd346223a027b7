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
        assert!(e.starts_with("password_hash:") && !e.contains("secretsalt"), "{e}");
        let e = ImportRow::from_json(&json!({"login": "x", "emial": "x@example.org"})).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        assert!(ImportRow::from_json(&json!({"email": "x@example.org"})).is_err());
    }
}
