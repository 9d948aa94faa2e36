//! [`LogFormat`]: the server's log line, `tracing-subscriber`'s full format with the request
//! id taken from the request being served instead of from a span.
//!
//! A line reads as before: `2026-12-05T11:17:04.123456Z  INFO request{id="…"}: target:
//! fields`. What changed is where the id comes from. A `tracing` span per request cost 0.65 µs
//! (the subscriber formats the span's fields into a fresh `String`, keeps it in a slab, and
//! enters and leaves the span on every poll); the access log now copies the id into a
//! thread-local slot while it polls the request ([`crate::access_log`]), and this formatter
//! reads the slot. Lines logged by the request's own code name it, exactly as with the span;
//! lines from other tasks (an MCP session's worker, the purge loop) never did.
//!
//! The timestamp's date and time of day are formatted once per second per thread; the rest of
//! a line is the subscriber's own field formatting into its reused buffer.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::access_log::with_current_request_id;

mod json;

/// The server's log line format (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// `tracing-subscriber`'s full format (see the module docs). ANSI colours are written
    /// only when the subscriber's writer has them enabled (the server enables them only on a
    /// terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors: `timestamp`, `level`, `target`,
    /// `request_id` (when a request is being served), `spans` (their names) and `fields` (the
    /// event's fields, `message` included). Never coloured.
    Json,
}

/// Escape sequences, as `tracing-subscriber` paints them.
mod ansi {
    pub(super) const BOLD: &str = "\x1b[1m";
    pub(super) const DIMMED: &str = "\x1b[2m";
    pub(super) const RESET: &str = "\x1b[0m";

    pub(super) fn level(level: tracing::Level) -> &'static str {
        match level {
            tracing::Level::TRACE => "\x1b[35m",
            tracing::Level::DEBUG => "\x1b[34m",
            tracing::Level::INFO => "\x1b[32m",
            tracing::Level::WARN => "\x1b[33m",
            tracing::Level::ERROR => "\x1b[31m",
        }
    }
}

/// Writes `text` wrapped in `style` and a reset when `on`, bare otherwise.
fn paint(writer: &mut Writer<'_>, on: bool, style: &str, text: &str) -> fmt::Result {
    if on {
        writer.write_str(style)?;
        writer.write_str(text)?;
        writer.write_str(ansi::RESET)
    } else {
        writer.write_str(text)
    }
}

impl<S, N> FormatEvent<S, N> for LogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        match self {
            Self::Text => format_text(ctx, writer, event),
            Self::Json => json::format(ctx, writer, event),
        }
    }
}

fn format_text<S, N>(
    ctx: &FmtContext<'_, S, N>,
    mut writer: Writer<'_>,
    event: &Event<'_>,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let colours = writer.has_ansi_escapes();
    let meta = event.metadata();
    if colours {
        writer.write_str(ansi::DIMMED)?;
    }
    write_timestamp(&mut writer, SystemTime::now())?;
    if colours {
        writer.write_str(ansi::RESET)?;
    }
    writer.write_char(' ')?;
    paint(
        &mut writer,
        colours,
        ansi::level(*meta.level()),
        level_name(*meta.level()),
    )?;
    writer.write_char(' ')?;

    let mut scoped = false;
    with_current_request_id(|id| -> fmt::Result {
        if let Some(id) = id {
            paint(&mut writer, colours, ansi::BOLD, "request{")?;
            write!(writer, "id={id:?}")?;
            paint(&mut writer, colours, ansi::BOLD, "}")?;
            paint(&mut writer, colours, ansi::DIMMED, ":")?;
            scoped = true;
        }
        Ok(())
    })?;
    if let Some(scope) = ctx.event_scope() {
        for span in scope.from_root() {
            paint(&mut writer, colours, ansi::BOLD, span.metadata().name())?;
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<N>>()
                && !fields.is_empty()
            {
                paint(&mut writer, colours, ansi::BOLD, "{")?;
                writer.write_str(fields)?;
                paint(&mut writer, colours, ansi::BOLD, "}")?;
            }
            paint(&mut writer, colours, ansi::DIMMED, ":")?;
            scoped = true;
        }
    }
    if scoped {
        writer.write_char(' ')?;
    }
    paint(&mut writer, colours, ansi::DIMMED, meta.target())?;
    paint(&mut writer, colours, ansi::DIMMED, ":")?;
    writer.write_char(' ')?;
    ctx.format_fields(writer.by_ref(), event)?;
    if colours {
        // Field names are printed in italics; make sure nothing bleeds into the next line.
        writer.write_str(ansi::RESET)?;
    }
    writeln!(writer)
}

/// The level as `tracing-subscriber` prints it: five columns, right-aligned.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of the last second this thread formatted, and that second.
#[derive(Default)]
struct SecondCache {
    second: u64,
    text: String,
}

thread_local! {
    static SECOND: RefCell<SecondCache> = RefCell::default();
}

/// Writes `now` in RFC 3339 with microseconds, in UTC (`2026-12-05T11:17:04.123456Z`), the
/// shape `tracing-subscriber`'s default timer prints.
fn write_timestamp(writer: &mut Writer<'_>, now: SystemTime) -> fmt::Result {
    // A clock before 1970 is printed as 1970: a log line is no place to fail.
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let second = since_epoch.as_secs();
    SECOND.with_borrow_mut(|cache| {
        if cache.text.is_empty() || cache.second != second {
            cache.second = second;
            cache.text.clear();
            let time = i64::try_from(second)
                .ok()
                .and_then(|second| chrono::DateTime::from_timestamp(second, 0))
                .unwrap_or_default();
            write!(cache.text, "{}", time.format("%Y-%m-%dT%H:%M:%S"))?;
        }
        writer.write_str(&cache.text)
    })?;
    write!(writer, ".{:06}Z", since_epoch.subsec_micros())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_with_microseconds_and_follow_the_clock_between_seconds() {
        let mut text = String::new();
        for offset in [
            Duration::ZERO,
            Duration::from_micros(951_782_400_000_001),
            Duration::from_micros(1_796_469_424_000_042),
            Duration::from_micros(1_796_469_424_999_999),
            Duration::from_micros(1_796_469_425_000_000),
        ] {
            write_timestamp(&mut Writer::new(&mut text), UNIX_EPOCH + offset).unwrap();
            text.push('|');
        }
        assert_eq!(
            text,
            "1970-01-01T00:00:00.000000Z|2000-02-29T00:00:00.000001Z|\
             2026-12-05T11:17:04.000042Z|2026-12-05T11:17:04.999999Z|2026-12-05T11:17:05.000000Z|"
        );
    }
}
