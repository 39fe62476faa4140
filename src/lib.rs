//! hearth: a self-hosted serverless platform that speaks the AWS Lambda APIs.
//!
//! Components (DESIGN.md): [`router`] (data plane), [`agent`] (node agent), [`control`]
//! (management), wired in one process by [`serve`]; [`cli`] holds the client commands.
#![deny(unsafe_code)]

pub mod admin;
pub mod agent;
pub mod api;
pub mod cli;
pub mod codestore;
pub mod config;
pub mod control;
pub mod events;
pub mod loadgen;
pub mod metrics;
pub mod queue;
pub mod router;
pub mod runtimes;
pub mod sandbox;
pub mod schedule;
pub mod serve;
pub mod store;
pub mod triggers;
