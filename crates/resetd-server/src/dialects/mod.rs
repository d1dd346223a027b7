//! The vendor dialects: each a thin module mapping one product's wire format onto the core's use
//! cases, switched on and mounted on a tenant in the `[dialects]` configuration section.

pub mod crafter;
pub mod empowerid;

use axum::Router;
use serde::{Deserialize, Serialize};

use crate::AppState;

/// The `[dialects]` section: one optional section per dialect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialectsConfig {
    /// Crafter Profile (`[dialects.crafter]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crafter: Option<crafter::CrafterConfig>,
    /// EmpowerID (`[dialects.empowerid]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empowerid: Option<empowerid::EmpowerIdConfig>,
}

impl DialectsConfig {
    /// Checks every configured dialect's settings.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(c) = &self.crafter {
            c.validate()?;
        }
        if let Some(c) = &self.empowerid {
            c.validate()?;
        }
        Ok(())
    }
}

/// The routes of every enabled dialect.
pub fn routes(config: &DialectsConfig) -> Router<AppState> {
    let mut r = Router::new();
    if let Some(c) = config.crafter.as_ref().filter(|c| c.enabled) {
        r = r.merge(crafter::routes(c));
    }
    if let Some(c) = config.empowerid.as_ref().filter(|c| c.enabled) {
        r = r.merge(empowerid::routes(c));
    }
    r
}
