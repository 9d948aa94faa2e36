#![doc = include_str!("../README.md")]

mod answer;
mod cache;
mod client;
pub mod limits;
mod verifier;

pub use client::IntrospectionError;
pub use verifier::{
    IntrospectionConfigError, IntrospectionTokenVerifier, IntrospectionTokenVerifierBuilder,
};
