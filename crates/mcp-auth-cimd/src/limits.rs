//! Every bound of the metadata-document resolver, with why it has the value it has. Each can be
//! changed on [`CimdResolverBuilder`](crate::CimdResolverBuilder); the fetcher's own bounds
//! (timeouts, concurrency, the negative cache) are in `mcp_auth_fetch::limits`.

/// Default cap on a document: 5 KiB. Real metadata documents are a few hundred bytes; the cap
/// bounds what one client id can make the server download and parse.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// Default shortest time a valid document is cached, whatever its `max-age` says (even
/// `no-store`): a client id used in a loop must not become a loop of fetches.
pub const DEFAULT_CACHE_MIN_SECONDS: u64 = 60;

/// Default cache lifetime of a valid document whose response has no `max-age`: five minutes
/// picks up a changed document soon, and keeps an active client's id off the network.
pub const DEFAULT_CACHE_SECONDS: u64 = 300;

/// Default longest time a valid document is cached, whatever its `max-age` says: a day, so a
/// withdrawn redirect URI stops working within a day at worst.
pub const DEFAULT_CACHE_MAX_SECONDS: u64 = 24 * 3600;

/// Default most documents cached at once (valid ones, and refusals of invalid ones). Past it,
/// entries are evicted (quick_cache's CLOCK-Pro), so distinct client ids cannot grow memory.
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// Default memory budget of the cache: 16 MiB. Each entry is charged its estimated size, and at
/// least `cache_bytes / cache_entries` (1.6 KiB by default), so both bounds hold at once: a
/// 5 KiB document buys fewer entries, never more memory.
pub const DEFAULT_CACHE_BYTES: usize = 16 * 1024 * 1024;
