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
    let mut fields = TextFields {
        writer: &mut writer,
        colours,
        first: true,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    if colours {
        // Field names are printed in italics; make sure nothing bleeds into the next line.
        writer.write_str(ansi::RESET)?;
    }
    writeln!(writer)
}

/// Writes an event's fields as `tracing-subscriber`'s `DefaultFields` does — the message bare,
/// then ` name=value` with each value as `Debug` prints it (so a string is quoted and escaped,
/// and a client-chosen value can forge neither a field nor a line) — straight into the line.
/// `DefaultFields` paints every name and `=` through `nu_ansi_term` styles even when colours
/// are off; on the two lines of a token request that was a third of their formatting.
struct TextFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    colours: bool,
    first: bool,
    result: fmt::Result,
}

impl TextFields<'_, '_> {
    fn separate(&mut self) {
        if self.first {
            self.first = false;
        } else if self.result.is_ok() {
            self.result = self.writer.write_char(' ');
        }
    }
}

impl tracing::field::Visit for TextFields<'_, '_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        // As DefaultFields: the error, then its chain of sources under `name.sources`.
        match value.source() {
            Some(source) => {
                let name = field.name();
                let sources = SourceList(source);
                self.record_debug(field, &format_args!("{value} {name}.sources={sources}"));
            }
            None => self.record_debug(field, &format_args!("{value}")),
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.separate();
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = if name == "message" {
            write!(self.writer, "{value:?}")
        } else if name.starts_with("log.") {
            Ok(())
        } else if self.colours {
            write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m{value:?}")
        } else {
            write!(self.writer, "{name}={value:?}")
        };
    }
}

/// An error's sources as `DefaultFields` lists them: `[first, second, …]`, each displayed.
struct SourceList<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for SourceList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut current = Some(self.0);
        while let Some(error) = current {
            list.entry(&format_args!("{error}"));
            current = error.source();
        }
        list.finish()
    }
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

    /// Formats every event's fields with `DefaultFields` and with [`TextFields`].
    struct Compare(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

    impl<S: Subscriber> tracing_subscriber::Layer<S> for Compare {
        fn on_event(&self, event: &Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let mut theirs = String::new();
            tracing_subscriber::fmt::format::DefaultFields::new()
                .format_fields(Writer::new(&mut theirs), event)
                .unwrap();
            let mut ours = String::new();
            let mut writer = Writer::new(&mut ours);
            let mut fields = TextFields {
                writer: &mut writer,
                colours: false,
                first: true,
                result: Ok(()),
            };
            event.record(&mut fields);
            fields.result.unwrap();
            self.0.lock().unwrap().push((theirs, ours));
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner \"quoted\"")]
    struct Inner;

    #[test]
    fn fields_are_written_exactly_as_default_fields_writes_them() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let lines = std::sync::Arc::default();
        let subscriber =
            tracing_subscriber::registry().with(Compare(std::sync::Arc::clone(&lines)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("a message alone");
            tracing::info!(
                client_id = "forged\" id=\"x\nINFO next line",
                count = 3,
                ok = true,
                "quoted and escaped"
            );
            tracing::warn!(path = %"/a b", value = ?Some("x"), r#type = "raw", "display and debug");
            tracing::error!(
                error = &Outer(Inner) as &(dyn std::error::Error + 'static),
                "with sources"
            );
            tracing::error!(error = &Inner as &(dyn std::error::Error + 'static));
            tracing::info!(event = "token.issued", grant_id = "g-1");
        });
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 6);
        for (theirs, ours) in lines.iter() {
            assert_eq!(ours, theirs);
        }
        // A client-chosen string stays one quoted value on one line.
        assert!(
            lines[1]
                .1
                .contains(r#"client_id="forged\" id=\"x\nINFO next line""#),
            "{}",
            lines[1].1
        );
    }

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
