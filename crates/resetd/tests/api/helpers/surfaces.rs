//! One server with every surface on (the native API, the hosted page and all five dialects),
//! and what the body tests check on every answer: the surface's error shape, and that no word
//! only Rust, serde or axum would write reaches a client.
#![allow(dead_code)]

use serde_json::Value;

use crate::helpers::config::TestConfig;
use crate::helpers::Server;

pub use crate::helpers::vendors::{CRAFTER, PEOPLE};

/// A password used in the bodies; no answer may repeat it.
pub const SECRET: &str = "quartz-meadow-secret-91";

/// Words that only Rust, serde or axum would write. None may reach a client.
pub const FORBIDDEN: &[&str] = &[
    "expected struct",
    "invalid type",
    "invalid value",
    "unknown variant",
    "variant",
    "at line ",
    "EOF while",
    "Failed to deserialize",
    "deserialize",
    "serde",
    "u64",
    "u32",
    "usize",
    "i64",
    "Option",
    "resetd_",
    "::",
    "struct ",
];

/// The error shape of each surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Problem,
    Html,
    Alfresco,
    Unleash,
    Payabli,
    Crafter,
    EmpowerId,
}

/// The server with every surface on, and what the endpoints need.
pub struct World {
    pub s: Server,
    /// An admin key of `default`, also allow-listed for Payabli.
    pub app_key: String,
    pub person_id: String,
}

/// Creates an API key of `default` through the admin API; returns (id, key).
pub async fn api_key(s: &Server, name: &str) -> (String, String) {
    s.api_key(name).await
}

/// One server with the native API, the page and all five dialects; `http` is extra `[http]`
/// settings (TOML lines).
pub async fn world(http: &str) -> World {
    world_with(TestConfig::fast().section(http)).await
}

/// [`world`] on `base` (to which the dialects are added).
pub async fn world_with(base: TestConfig) -> World {
    let first = Server::spawn(&base);
    let (app_id, app_key) = first.api_key("apps").await;
    let person_id = first
        .add_person(
            "bodies",
            "bodies@example.com",
            Some("violet tangerine orbit 7"),
        )
        .await;
    let s = first.restart(&base.every_dialect(&app_id));
    World {
        s,
        app_key,
        person_id,
    }
}

/// Checks that `body` is `shape`'s error body for `status`; returns why not.
pub fn check_shape(
    shape: Shape,
    status: u16,
    content_type: Option<&str>,
    body: &str,
) -> Result<(), String> {
    let ct = content_type.unwrap_or("");
    let want_ct = match shape {
        Shape::Problem => "application/problem+json",
        Shape::Html => "text/html; charset=utf-8",
        Shape::Alfresco => "application/json;charset=UTF-8",
        Shape::Unleash | Shape::Payabli | Shape::EmpowerId => "application/json; charset=utf-8",
        Shape::Crafter => "application/json",
    };
    if ct != want_ct {
        return Err(format!("content type {ct:?}, not {want_ct:?}"));
    }
    if shape == Shape::Html {
        return if body.starts_with("<!DOCTYPE html>") {
            Ok(())
        } else {
            Err("not an HTML page".into())
        };
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
    };
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64) == Some(u64::from(status));
    let ok = match shape {
        Shape::Problem => {
            v["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:resetd:problem:"))
                && n("/status")
                && s("/title")
                && s("/detail")
        }
        Shape::Alfresco => {
            s("/error/errorKey")
                && n("/error/statusCode")
                && s("/error/briefSummary")
                && s("/error/stackTrace")
                && s("/error/descriptionURL")
                && s("/error/logId")
        }
        Shape::Unleash => {
            s("/name") && s("/message") && v["details"].as_array().is_some_and(|d| !d.is_empty())
        }
        Shape::Payabli => {
            v["isSuccess"] == false
                && n("/responseCode")
                && s("/responseText")
                && s("/responseData/explanation")
                && s("/responseData/todoAction")
        }
        Shape::Crafter => s("/errorCode") && s("/message"),
        Shape::EmpowerId => v["Success"] == false && s("/Message") && s("/Exception"),
        Shape::Html => unreachable!(),
    };
    if ok {
        Ok(())
    } else {
        Err("not the surface's error body".into())
    }
}

/// The forbidden words `text` holds.
pub fn forbidden_in(text: &str) -> Vec<&'static str> {
    let mut found: Vec<&str> = FORBIDDEN
        .iter()
        .copied()
        .filter(|w| text.contains(w))
        .collect();
    // serde_json's position, whatever words come before it.
    for (i, _) in text.match_indices("line ") {
        let rest = &text[i + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(" column ") {
            found.push("line N column M");
        }
    }
    found
}
