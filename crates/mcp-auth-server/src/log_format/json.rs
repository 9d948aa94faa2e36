//! `--log-format json`: one JSON object per line, for log collectors.
//!
//! `{"timestamp":"2026-12-05T11:17:04.123456Z","level":"INFO","target":"…","request_id":"…",
//! "spans":["…"],"fields":{"message":"…",…}}`. Field values keep their JSON type where
//! `tracing` gives one (integers, floats, booleans, strings); anything else is its `Debug`
//! text. `request_id` and `spans` are left out when there are none. Serialisation is
//! `serde_json`'s, so no client-chosen value (a request id, a path) can break a line or forge
//! a member.

use std::fmt;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::write_timestamp;
use crate::access_log::with_current_request_id;

/// Collects an event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

pub(super) fn format<S, N>(
    ctx: &FmtContext<'_, S, N>,
    mut writer: Writer<'_>,
    event: &Event<'_>,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let meta = event.metadata();
    let mut timestamp = String::new();
    write_timestamp(&mut Writer::new(&mut timestamp), SystemTime::now())?;
    let mut line = Map::new();
    line.insert("timestamp".to_owned(), Value::from(timestamp));
    line.insert("level".to_owned(), Value::from(meta.level().as_str()));
    line.insert("target".to_owned(), Value::from(meta.target()));
    with_current_request_id(|id| {
        if let Some(id) = id {
            line.insert("request_id".to_owned(), Value::from(id));
        }
    });
    if let Some(scope) = ctx.event_scope() {
        let spans: Vec<Value> = scope
            .from_root()
            .map(|span| Value::from(span.metadata().name()))
            .collect();
        line.insert("spans".to_owned(), Value::Array(spans));
    }
    let mut fields = Fields(Map::new());
    event.record(&mut fields);
    line.insert("fields".to_owned(), Value::Object(fields.0));
    let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
    writer.write_str(&text)?;
    writeln!(writer)
}
