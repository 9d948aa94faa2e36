#![doc = include_str!("../README.md")]

mod address;
#[cfg(test)]
mod bounds_tests;
mod builder;
mod failures;
mod fetch;
pub mod limits;
mod single_flight;

pub use address::{IpRange, IpRangeError, is_special_use};
pub use builder::VettedFetcherBuilder;
pub use failures::{FetchClock, MonotonicClock};
pub use fetch::{
    FetchConfigError, FetchError, Fetched, NameResolver, StaticResolver, SystemResolver,
    VettedFetcher,
};
