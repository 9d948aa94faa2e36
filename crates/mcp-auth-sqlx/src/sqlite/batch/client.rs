//! Client registrations as a batchable write ([`ClientInsert`]).
//!
//! Each insert is SQLite's shared `insert_client` statement itself ([`SQL`]), renumbered for
//! its place in the batch and returning its index: a plain `INSERT`, so a `client_id` already
//! stored fails it with a unique violation (`Conflict`) and, in a batch, fails the batch, whose
//! inserts then run again one by one (see [`super`]).

use mcp_auth_core::StorageError;

use super::{Bound, Op, Texts, numbered};
use crate::sqlite::sql::SQL;

/// Parameters each insert binds: `client_id`, `record`, as in [`SQL`]'s `insert_client`.
const PARAMS_PER_INSERT: usize = 2;

/// One client insert, bound: its `client_id` and its record as JSON.
#[derive(Debug)]
pub(in crate::sqlite) struct ClientInsert {
    client_id: String,
    record: String,
}

impl ClientInsert {
    /// `ClientStore::insert_client`'s values, encoded (and checked storable) on the caller's
    /// task.
    pub(in crate::sqlite) fn new(client_id: &str, record: String) -> Self {
        Self {
            client_id: client_id.to_owned(),
            record,
        }
    }
}

impl Op for ClientInsert {
    /// Nothing to tell but success: a client that cannot be stored is an error.
    type Outcome = ();

    const WHAT: &'static str = "client insert";

    const PARAMS: usize = PARAMS_PER_INSERT;

    fn texts() -> &'static Texts {
        static TEXTS: Texts = Texts::new();
        &TEXTS
    }

    /// `insert_client` with parameters `$2i+1`, `$2i+2`, returning its index.
    fn statements(op: usize) -> String {
        let [first, ..] = numbered::<{ Self::PARAMS }>(op);
        let insert = renumbered(SQL.insert_client, first - 1);
        format!("{insert} RETURNING {op} AS op;")
    }

    fn bind(self, query: Bound<'static>) -> Bound<'static> {
        query.bind(self.client_id).bind(self.record)
    }

    fn bind_ref<'q>(&'q self, query: Bound<'q>) -> Bound<'q> {
        query
            .bind(self.client_id.as_str())
            .bind(self.record.as_str())
    }

    fn outcome(returned: bool) -> Result<(), StorageError> {
        if returned {
            Ok(())
        } else {
            // Not reached: an `INSERT` without a conflict clause inserts or fails the query.
            Err(StorageError::other(
                "a committed client insert did not return its row",
            ))
        }
    }
}

/// `sql` with each numbered parameter `?n` written `$m`, m = n + `offset` (see [`super`] for
/// why `$`). A `?` without a number is left as it is, which the tests refuse.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('?') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&format!("${}", n + offset)),
            Err(_) => out.push_str(&rest[at..at + 1 + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::batch::MAX_OPS_PER_COMMIT;

    #[test]
    fn renumbering_shifts_every_numbered_parameter() {
        assert_eq!(renumbered("VALUES (?1, ?2, ?1)", 4), "VALUES ($5, $6, $5)");
        assert_eq!(renumbered("a ?10 b ? c", 1), "a $11 b ? c");
        assert_eq!(renumbered("no parameters", 3), "no parameters");
    }

    /// The batched insert is SQLite's `insert_client`, renumbered, plus the index it returns:
    /// the same statement as before group commit.
    #[test]
    fn client_insert_texts_are_the_shared_statement_numbered_apart() {
        let alone = ClientInsert::sql(1).expect("text");
        let expected = format!(
            "BEGIN IMMEDIATE;{} RETURNING 0 AS op;COMMIT;",
            SQL.insert_client.replace('?', "$")
        );
        assert_eq!(alone, expected);
        assert!(ClientInsert::sql(0).is_none());
        assert!(ClientInsert::sql(MAX_OPS_PER_COMMIT + 1).is_none());
        for count in 1..=MAX_OPS_PER_COMMIT {
            let sql = ClientInsert::sql(count).expect("text");
            assert!(sql.starts_with("BEGIN IMMEDIATE;"), "{sql}");
            assert!(sql.ends_with("COMMIT;"), "{sql}");
            assert_eq!(sql.matches("INSERT INTO clients").count(), count, "{sql}");
            let last = count - 1;
            assert!(sql.contains(&format!("RETURNING {last} AS op;")), "{sql}");
            let highest = PARAMS_PER_INSERT * count;
            assert!(sql.contains(&format!("${highest})")), "{sql}");
            assert!(!sql.contains(&format!("${}", highest + 1)), "{sql}");
            // Numbered `?n` parameters would leave unnamed gaps that sqlx binds wrongly.
            assert!(!sql.contains('?'), "{sql}");
        }
    }
}
