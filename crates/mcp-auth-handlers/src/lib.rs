#![doc = include_str!("../README.md")]

pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod context;
pub mod form;
pub mod metadata;
pub mod register;
pub mod response;
pub mod revoke;
pub mod token;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod totality;
