#![doc = include_str!("../README.md")]

mod address;
mod fetch;

pub use address::{IpRange, IpRangeError, is_special_use};
pub use fetch::{
    FetchConfigError, FetchError, Fetched, NameResolver, SystemResolver, VettedFetcher,
    VettedFetcherBuilder,
};
