//! The vendor dialects: each a thin module that maps one product's password-reset wire format
//! onto the core's use cases and words every error in that product's own envelope. Each is
//! switched on and mounted on a tenant by configuration (`[dialects.<name>]`).

pub mod alfresco;
pub mod crafter;
pub mod empowerid;
pub mod payabli;
pub mod unleash;
pub mod wire;

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::Router;
use resetd_core::{CoreError, Service};
use serde::{Deserialize, Serialize};

use crate::body::{Limits, TimeoutAnswer};
use crate::AppState;

/// Which dialects are on, where, and their own settings. A missing section is a dialect that is
/// off; a section is on only with `enabled = true`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialectsConfig {
    /// Alfresco REST API v1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alfresco: Option<alfresco::AlfrescoConfig>,
    /// Crafter Profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crafter: Option<crafter::CrafterConfig>,
    /// EmpowerID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empowerid: Option<empowerid::EmpowerIdConfig>,
    /// Unleash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unleash: Option<unleash::UnleashConfig>,
    /// Payabli.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payabli: Option<payabli::PayabliConfig>,
}

impl DialectsConfig {
    /// Checks every configured section (enabled or not); the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(c) = &self.alfresco {
            c.validate()?;
        }
        if let Some(c) = &self.crafter {
            c.validate()?;
        }
        if let Some(c) = &self.empowerid {
            c.validate()?;
        }
        if let Some(c) = &self.unleash {
            c.validate()?;
        }
        if let Some(c) = &self.payabli {
            c.validate()?;
        }
        Ok(())
    }

    /// Prepares the enabled dialects' tenants at start-up: checks that they exist and registers
    /// the clients their links point to (Alfresco's client apps, the Unleash UI, Payabli's page).
    pub async fn provision(&self, service: &Service) -> Result<(), String> {
        if let Some(c) = self.alfresco.as_ref().filter(|c| c.enabled) {
            c.provision(service).await?;
        }
        if let Some(c) = self.unleash.as_ref().filter(|c| c.enabled) {
            c.provision(service).await?;
        }
        if let Some(c) = self.payabli.as_ref().filter(|c| c.enabled) {
            c.provision(service).await?;
        }
        Ok(())
    }
}

/// The routes of every enabled dialect, each under `limits` with its own timeout answer (the
/// vendor's "busy, retry" error with `Retry-After`).
pub fn routes(config: &DialectsConfig, limits: Limits) -> Router<AppState> {
    // The vendor's "busy" error, asking for the retry a few seconds later that the other
    // surfaces ask for after a timeout (not the second of a saturated hashing pool).
    fn busy<E: IntoResponse>(e: impl Fn(CoreError) -> E + Send + Sync + 'static) -> TimeoutAnswer {
        Arc::new(move |_| {
            let mut res = e(CoreError::Overloaded).into_response();
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(resetd_core::error::RETRY_UNAVAILABLE_SECS),
            );
            res
        })
    }
    let mut r = Router::new();
    if let Some(c) = config.alfresco.as_ref().filter(|c| c.enabled) {
        r = r.merge(limits.guard(alfresco::routes(c), busy(alfresco::AlfrescoError::from)));
    }
    if let Some(c) = config.crafter.as_ref().filter(|c| c.enabled) {
        r = r.merge(limits.guard(crafter::routes(c), busy(crafter::CrafterError::from_core)));
    }
    if let Some(c) = config.empowerid.as_ref().filter(|c| c.enabled) {
        r = r.merge(limits.guard(
            empowerid::routes(c),
            busy(empowerid::EmpowerIdError::from_core),
        ));
    }
    if let Some(c) = config.unleash.as_ref().filter(|c| c.enabled) {
        r = r.merge(limits.guard(unleash::routes(c), busy(unleash::UnleashError::from)));
    }
    if let Some(c) = config.payabli.as_ref().filter(|c| c.enabled) {
        r = r.merge(limits.guard(payabli::routes(c), busy(payabli::PayabliError::from)));
    }
    r
}
