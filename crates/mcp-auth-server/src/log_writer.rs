//! [`LogWriter`]: log lines go to a bounded in-memory buffer; a background thread writes them
//! out in batches, so a request never waits on a terminal, a pipe or a disk.
//!
//! `tracing-appender`'s non-blocking writer was measured first: it allocates every line and
//! sends it through a channel whose receiver sleeps between lines, so each line paid an
//! allocation and a futex wake-up — 1.4 µs of the request's time, more than the rest of the
//! access log. Here a line costs a lock and a copy: the writer thread is woken at most once
//! per batch (when it sleeps on an empty buffer, or when the buffer passes half full), and
//! otherwise collects lines for [`LOG_FLUSH_INTERVAL`] before writing them in one go.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tracing_subscriber::fmt::MakeWriter;

use crate::limits::{LOG_BUFFER_BYTES, LOG_FLUSH_INTERVAL};

/// A `tracing-subscriber` writer that queues lines for a background thread (see the module
/// docs). When [`LOG_BUFFER_BYTES`] are waiting, further lines are dropped rather than
/// making requests wait; the thread reports how many with the next batch.
#[derive(Clone, Debug)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it has written every queued line. Keep it
/// alive for as long as the process logs.
#[derive(Debug)]
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    lines: Vec<u8>,
    dropped: u64,
    /// The writer thread waits for a first line (so the next line must wake it).
    idle: bool,
    shutdown: bool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Every critical section leaves the queue consistent, so a panic elsewhere while
        // holding the lock does not make its contents unusable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LogWriter {
    /// Starts the writer thread over `destination`. Fails only if the thread cannot be
    /// spawned.
    pub fn spawn<W: Write + Send + 'static>(
        destination: W,
    ) -> std::io::Result<(LogWriter, LogGuard)> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("mcp-auth-log".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || write_batches(&shared, destination)
            })?;
        Ok((
            LogWriter {
                shared: Arc::clone(&shared),
            },
            LogGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Lines dropped so far because the buffer was full (not yet reported).
    pub fn dropped_lines(&self) -> u64 {
        self.shared.queue().dropped
    }
}

/// One queued write; `tracing-subscriber` writes each formatted line with one `write_all`.
#[derive(Debug)]
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut queue = self.shared.queue();
        let before = queue.lines.len();
        if before + line.len() > LOG_BUFFER_BYTES {
            queue.dropped += 1;
        } else {
            queue.lines.extend_from_slice(line);
            let half = LOG_BUFFER_BYTES / 2;
            if queue.idle || (before < half && queue.lines.len() >= half) {
                queue.idle = false;
                self.shared.wake.notify_one();
            }
        }
        // Report the bytes as taken either way: a dropped line is the chosen outcome, not an
        // error for the subscriber to retry.
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The writer thread: waits for lines, lets a batch collect, writes it, until shut down.
fn write_batches<W: Write>(shared: &Shared, mut destination: W) {
    let mut batch = Vec::new();
    loop {
        let (dropped, shutdown) = {
            let mut queue = shared.queue();
            while queue.lines.is_empty() && queue.dropped == 0 && !queue.shutdown {
                queue.idle = true;
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !queue.shutdown {
                // Let more lines join this batch, unless the buffer fills first.
                queue = shared
                    .wake
                    .wait_timeout(queue, LOG_FLUSH_INTERVAL)
                    .map_or_else(|err| err.into_inner().0, |(queue, _)| queue);
            }
            std::mem::swap(&mut batch, &mut queue.lines);
            (std::mem::take(&mut queue.dropped), queue.shutdown)
        };
        // A failing destination (a closed stderr) has nowhere to report to: lines are lost,
        // as they would be if written directly.
        if dropped > 0 {
            let _ = writeln!(
                destination,
                "mcp-auth-server: {dropped} log lines dropped: the log destination did not keep up"
            );
        }
        let _ = destination.write_all(&batch);
        let _ = destination.flush();
        let used = batch.len();
        batch.clear();
        if !keep_buffer(used, batch.capacity()) {
            batch = Vec::new();
        }
        if shutdown {
            return;
        }
    }
}

/// Whether the writer thread keeps a written batch's buffer, to hand it back to the requests
/// for the next batch: a small one always; a large one while the load that grew it lasts (it
/// was at least a quarter full), so a burst's buffer is not kept for the quiet that follows
/// it. Dropping every large buffer made each 10 ms batch of a busy server grow a fresh one
/// from nothing on the requests' side (reallocations, page faults and the allocator's heap
/// growing and shrinking): 0.7 µs of a token request. At most two buffers exist (one filling,
/// one being written), each bounded by [`LOG_BUFFER_BYTES`] of lines.
fn keep_buffer(used: usize, capacity: usize) -> bool {
    capacity <= LOG_BUFFER_BYTES / 8 || used >= capacity / 4
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.queue().shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination that accepts nothing until released, as a stalled pipe would, then
    /// keeps what it was given.
    struct Stalled {
        release: std::sync::mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.release.recv();
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_destination_costs_lines_not_waiting_and_the_loss_is_reported() {
        let (release, stalled) = std::sync::mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let destination = Stalled {
            release: stalled,
            written: Arc::clone(&written),
        };
        let (writer, guard) = LogWriter::spawn(destination).unwrap();
        let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        // Three buffers' worth: at most two fit (one stalled in the destination, one queued),
        // and each write returns at once (a blocking writer would hang the test here).
        let lines = 3 * LOG_BUFFER_BYTES / line.len();
        for _ in 0..lines {
            writer.make_writer().write_all(&line).unwrap();
        }
        assert!(writer.dropped_lines() as usize >= lines / 3 - 1);
        drop(release);
        drop(guard);
        let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert!(
            written.contains("log lines dropped"),
            "the loss is reported"
        );
        assert!(written.lines().filter(|l| l.starts_with('x')).count() < lines);
    }

    #[test]
    fn a_busy_buffer_is_kept_for_the_next_batch_and_a_burst_one_is_given_back() {
        let large = LOG_BUFFER_BYTES / 2;
        for (used, capacity, kept) in [
            // Small buffers cost nothing worth returning.
            (0, LOG_BUFFER_BYTES / 8, true),
            // A busy server's batches fill most of their buffer: reuse it.
            (large / 2, large, true),
            (large / 4, large, true),
            // The first quiet batch after a burst: give the burst's buffer back.
            (large / 4 - 1, large, false),
            (0, large, false),
        ] {
            assert_eq!(keep_buffer(used, capacity), kept, "{used} of {capacity}");
        }
    }

    #[test]
    fn every_queued_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let written = Arc::new(Mutex::new(Vec::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (writer, guard) = LogWriter::spawn(Shared(Arc::clone(&written))).unwrap();
        for i in 0..1000 {
            writeln!(writer.make_writer(), "line {i}").unwrap();
        }
        drop(guard);
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(
            String::from_utf8(written.lock().unwrap().clone()).unwrap(),
            expected
        );
    }
}
