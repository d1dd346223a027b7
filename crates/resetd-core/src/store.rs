//! The old path of the persistence ports, kept so callers move to [`crate::ports`] gradually.

pub use crate::ports::*;
