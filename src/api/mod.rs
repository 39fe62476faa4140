//! Wire types and error mapping shared by every component (Lambda JSON shapes, headers).

pub mod descriptor;
pub mod error;
pub mod names;
pub mod types;

pub use descriptor::VersionDescriptor;
pub use error::{ApiError, UrlError};
