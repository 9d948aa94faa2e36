//! Errors as log lines: the whole `source()` chain, so a storage failure's cause (the sqlx or
//! Redis error) is not lost behind "storage failure".

use std::error::Error;

/// An error and its causes, `: `-separated; a cause already quoted in the message above it is
/// not repeated. Our errors never carry secrets (store URLs are redacted before they reach
/// one), so the chain is safe to log.
pub fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(source) = cause {
        let line = source.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_cause_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("storage failure")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("database is locked"));
        assert_eq!(super::chain(&err), "storage failure: database is locked");
    }
}
