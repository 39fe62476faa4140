//! hearth: a self-hosted serverless platform that speaks the AWS Lambda APIs.
//!
//! Components (DESIGN.md): [`router`] (data plane), [`agent`] (node agent), [`control`]
//! (management), wired in one process by [`serve`].
#![deny(unsafe_code)]

pub mod codestore;
pub mod sandbox;
