//! The bounds core enforces, gathered where an operator can find them. Each says why it has
//! its value.

/// Longest `jti` accepted in a signed assertion (an ID-JAG or a client assertion), in
/// characters. Real ids are UUIDs or short random strings; 256 leaves room for any sane
/// format while keeping a request from making the server hash and compare megabytes. The id
/// reaches storage only as its SHA-256 hash, so stored entries have one size whatever was sent.
pub const MAX_JTI_LENGTH: usize = 256;

/// Longest assertion lifetime (`exp` − `iat`, in seconds) a validator may be configured to
/// accept: one day. The default is much shorter (an hour in `mcp-auth-jwt`); this ceiling
/// exists so that replay entries, which must outlive the assertion, stay bounded too.
pub const MAX_ASSERTION_LIFETIME: u64 = 24 * 3600;

/// Largest clock leeway, in seconds, a validator may be configured with: five minutes, more
/// than any reasonably synchronised pair of clocks differs.
pub const MAX_ASSERTION_LEEWAY: u64 = 300;

/// The longest time a replay entry may have to be kept, in seconds after the moment it is
/// recorded: an assertion issued up to one leeway in the future, living
/// [`MAX_ASSERTION_LIFETIME`], and still accepted one leeway after its `exp`. The provider
/// refuses an assertion whose replay entry would have to live longer (it could be replayed
/// once the entry is gone), and a store may clamp entry lifetimes to this value.
pub const MAX_REPLAY_WINDOW: i64 = (MAX_ASSERTION_LIFETIME + 2 * MAX_ASSERTION_LEEWAY) as i64;

/// Causes [`ErrorChain`](crate::ErrorChain) prints at most after the error itself. Real chains
/// are three to six deep (handler, provider, storage, driver, I/O); the bound only keeps a
/// cyclic or pathological `source()` implementation from producing an endless log line.
pub const MAX_ERROR_CHAIN_DEPTH: usize = 16;

/// Bytes of client records `StoreProvider` keeps decoded in its client cache, each weighed by
/// its serialised size: 8 MiB holds thousands of ordinary registrations (a few hundred bytes
/// to a few KiB each) yet caps what large ones can cost, since a record's size is the
/// registrant's choice. Past it, entries are evicted.
pub const MAX_CLIENT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Client records the cache holds at most: every entry weighs at least
/// [`MIN_CLIENT_CACHE_ENTRY_WEIGHT`], so the byte budget alone enforces this count. 4096 covers
/// every client a busy server sees within the cache's TTL.
pub const MAX_CLIENT_CACHE_ENTRIES: usize = 4096;

/// The weight a cached client record has at least, whatever its size: the byte budget over
/// the entry bound (2 KiB), which is also about what a decoded record costs in memory beyond
/// its JSON (allocations, the cache's own bookkeeping).
pub const MIN_CLIENT_CACHE_ENTRY_WEIGHT: u64 =
    MAX_CLIENT_CACHE_BYTES / MAX_CLIENT_CACHE_ENTRIES as u64;

/// Distinct keys [`LocalRateLimiter`](crate::LocalRateLimiter) tracks per quota before it
/// sweeps idle ones; beyond it after a sweep, new keys share one overflow budget. 100,000 keys of ~100 bytes each bound
/// the limiter to ~10 MiB per quota however many addresses an attacker uses.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// Distinct quotas one [`LocalRateLimiter`](crate::LocalRateLimiter) serves (a deployment
/// configures a handful).
pub const MAX_QUOTAS: usize = 32;

/// Inserts between the opportunistic sweeps of `MemoryStore` (at least; a store holding more
/// records waits for as many inserts as it holds, so that sweeping costs O(1) per insert):
/// a store that is never purged explicitly still stays within about twice its live records,
/// and a small one is not swept on every insert.
pub const MEMORY_STORE_SWEEP_EVERY: usize = 1024;

/// How long `StoreProvider` remembers, by default, that storage holds no token of a presented
/// access-token hash, in seconds (`StoreProviderBuilder::unknown_token_cache_ttl`). Five seconds
/// turn a client hammering with one dead or made-up token into one storage read per five
/// seconds, while an entry never hides a real token (see `store_provider::unknown_token_cache`),
/// so the TTL only bounds how long a miss occupies memory.
pub const UNKNOWN_TOKEN_CACHE_TTL: u64 = 5;

/// Unknown access-token hashes that cache holds at most, the least useful evicted first.
/// An entry is a 32-byte hash and a timestamp, about 64 bytes with the cache's bookkeeping, so
/// 65,536 entries cap it at ~4 MiB however many tokens are made up; the cache grows to that
/// only under such a flood.
pub const UNKNOWN_TOKEN_CACHE_ENTRIES: usize = 65_536;
