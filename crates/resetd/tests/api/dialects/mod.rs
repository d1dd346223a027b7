//! The five dialects' contract tests, one module each (dialects.md): every row of a vendor's
//! behaviour matrix with status, headers and exact body, against the real binary.

mod alfresco;
mod crafter;
mod empowerid;
mod payabli;
mod unleash;
