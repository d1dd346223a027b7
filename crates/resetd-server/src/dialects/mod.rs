//! The vendor dialects: each a thin module that maps one product's password-reset wire format
//! onto the core's use cases and words every error in that product's own envelope. Each is
//! switched on and mounted on a tenant by configuration (`[dialects.<name>]`). What they share is
//! in [`kit`]; the list of them is the registry below, and nothing else names them.

pub mod kit;

use serde::{Deserialize, Serialize};

use kit::Dialect;
pub use kit::Dialects;

/// Declares each dialect once: its module, its `[dialects.<module>]` section in
/// [`DialectsConfig`], and its place in the order of [`DialectsConfig::check`] (which is the
/// order of provisioning and of mounting).
macro_rules! registry {
    ($( $(#[doc = $doc:literal])* $module:ident :: $dialect:ident ),* $(,)?) => {
        $( pub mod $module; )*

        /// Which dialects are on, where, and their own settings. A missing section is a dialect
        /// that is off; a section is on only with `enabled = true`.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct DialectsConfig {
            $(
                $(#[doc = $doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $module: Option<<$module::$dialect as Dialect>::Config>,
            )*
        }

        impl DialectsConfig {
            /// Checks every configured section, on or off (the error names the offending key),
            /// into the dialects to serve.
            pub fn check(&self) -> Result<Dialects, String> {
                let mut on = Dialects::default();
                $( on.add::<$module::$dialect>(self.$module.as_ref())?; )*
                Ok(on)
            }
        }
    };
}

registry! {
    /// Alfresco REST API v1.
    alfresco::Alfresco,
    /// Crafter Profile.
    crafter::Crafter,
    /// EmpowerID.
    empowerid::EmpowerId,
    /// Unleash.
    unleash::Unleash,
    /// Payabli.
    payabli::Payabli,
}

impl DialectsConfig {
    /// Checks every configured section, as [`Self::check`] does.
    pub fn validate(&self) -> Result<(), String> {
        self.check().map(drop)
    }
}
