//! The load generator: kept-alive connections ([`CONNECTIONS`] for `bench e2e`), one thread
//! each, sending the same request back to back; the servers' CPU time is read from
//! `/proc/PID/stat` around the measured window, and every request's latency is recorded (the
//! clock read that ends one request starts the next, so this costs the load generator a
//! vector push, not a clock read). And the latency run: one connection, sequential requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use super::http::{Conn, Response};
use crate::Result;

/// Concurrent connections of `bench e2e`, each with one request in flight (a thread each).
/// Enough that the
/// server, on its one core, finds requests waiting whenever it finishes one: a server that
/// idles between requests pays a wake-up per request, which inflates its CPU per request the
/// more the faster it is (measured: 8 connections left the floor 85% idle and doubled its
/// figure). The report shows how busy each server was.
pub(super) const CONNECTIONS: usize = 32;
/// Load before the measured window (connections, caches, allocator pools, JIT-free but
/// page-cold code).
const WARMUP: Duration = Duration::from_millis(300);
/// The measured window of one load run. At 10 ms per clock tick, a server busy half the time
/// is charged 75 ticks: a resolution near 1%.
const WINDOW: Duration = Duration::from_millis(1_500);
/// Requests of one measured window at most, whatever the speed (and so connections, when the
/// server closes after each answer: well under the ephemeral port range). Also bounds the
/// latencies recorded: 16 bytes each, 3.2 MB at most.
const MAX_REQUESTS: u64 = 200_000;
/// Sequential requests of a latency run, after [`LATENCY_WARMUP`] unmeasured ones.
const LATENCY_REQUESTS: usize = 1_000;
const LATENCY_WARMUP: usize = 50;
/// A latency run stops here even if its requests are not all done (a 40 ms delayed-ACK stall
/// per request would otherwise take 40 s).
const LATENCY_TIME_CAP: Duration = Duration::from_secs(10);

/// Builds the request a connection sends, after any per-connection set-up (an MCP session).
pub(super) type Prepare = Arc<dyn Fn(&mut Conn) -> Result<Vec<u8>> + Send + Sync>;

/// What one measured window gave.
#[derive(Debug, Default, Clone)]
pub(super) struct LoadRun {
    pub(super) requests: u64,
    pub(super) cpu: Duration,
    pub(super) elapsed: Duration,
    /// Connections opened again because the server closed one.
    pub(super) reconnects: u64,
    /// Responses whose status was not the expected one, and the first of them.
    pub(super) unexpected: u64,
    pub(super) first_unexpected: Option<String>,
    /// Latency percentiles of the window's requests, each timed from its send to the end of
    /// its response, under this load (so they include the wait for the server's attention).
    pub(super) under_load: Option<Latency>,
}

impl LoadRun {
    /// The share of the window the server spent on a CPU (1.0: one core fully busy).
    pub(super) fn busy(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU time per completed request, in microseconds.
    pub(super) fn cpu_per_request_us(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }
}

/// The server process's CPU time (user + system, all threads, exited ones included).
pub(super) struct CpuClock {
    stat: String,
    tick: Duration,
}

impl CpuClock {
    pub(super) fn new(pid: u32, ticks_per_second: u64) -> Self {
        Self {
            stat: format!("/proc/{pid}/stat"),
            tick: Duration::from_secs(1) / u32::try_from(ticks_per_second.max(1)).unwrap_or(100),
        }
    }

    pub(super) fn read(&self) -> Result<Duration> {
        let ticks = parse_cpu_ticks(&std::fs::read_to_string(&self.stat)?)?;
        Ok(self.tick * u32::try_from(ticks)?)
    }
}

/// utime + stime, in clock ticks, from the text of `/proc/PID/stat`.
fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    // The command name (field 2) may hold spaces and parentheses; the fields after its last
    // `)` are plain numbers.
    let after_name = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .ok_or("unreadable /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), utime and stime; `fields[0]` is field 3.
    let ticks = |index: usize| -> Result<u64> {
        Ok(fields
            .get(index)
            .ok_or("short /proc stat")?
            .parse::<u64>()?)
    };
    Ok(ticks(11)? + ticks(12)?)
}

/// Loads `addr` with the request `prepare` builds, on [`CONNECTIONS`] connections, and
/// measures the server's CPU over the window after the warm-up.
pub(super) fn load(
    addr: SocketAddr,
    clock: &CpuClock,
    prepare: &Prepare,
    expect: u16,
) -> Result<LoadRun> {
    load_with(addr, CONNECTIONS, &[clock], prepare, expect).map(|(run, _)| run)
}

/// Loads `addr` like [`load`] on `connections` connections, and measures the CPU time of
/// every process in `clocks` over the window: the run's `cpu` is the first's, and the second
/// value holds each one's, in order.
pub(super) fn load_with(
    addr: SocketAddr,
    connections: usize,
    clocks: &[&CpuClock],
    prepare: &Prepare,
    expect: u16,
) -> Result<(LoadRun, Vec<Duration>)> {
    // Workers and this thread meet twice: after the warm-up (CPU read) and to start.
    let barrier = Arc::new(Barrier::new(connections + 1));
    let sent = Arc::new(AtomicU64::new(0));
    let total = Arc::new(Mutex::new((LoadRun::default(), Vec::new())));
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (barrier, sent, total, prepare) = (
            Arc::clone(&barrier),
            Arc::clone(&sent),
            Arc::clone(&total),
            Arc::clone(prepare),
        );
        let capacity = usize::try_from(MAX_REQUESTS).unwrap_or(0) / connections.max(1);
        workers.push(std::thread::spawn(move || -> Result<(), String> {
            let mut times = Vec::with_capacity(capacity);
            let (run, error) = worker(addr, &prepare, expect, &barrier, &sent, &mut times);
            if let Ok(mut guard) = total.lock() {
                let (total, all_times) = &mut *guard;
                all_times.extend_from_slice(&times);
                total.requests += run.requests;
                total.reconnects += run.reconnects;
                total.unexpected += run.unexpected;
                if total.first_unexpected.is_none() {
                    total.first_unexpected = run.first_unexpected;
                }
            }
            error.map_or(Ok(()), Err)
        }));
    }
    barrier.wait();
    let cpu_before: Vec<Result<Duration>> = clocks.iter().map(|clock| clock.read()).collect();
    let started = Instant::now();
    barrier.wait();
    let mut errors = Vec::new();
    for worker in workers {
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => errors.push(error),
            Err(_) => errors.push("a load thread panicked".to_owned()),
        }
    }
    let elapsed = started.elapsed();
    let mut cpu = Vec::with_capacity(clocks.len());
    for (clock, before) in clocks.iter().zip(cpu_before) {
        cpu.push(clock.read()?.saturating_sub(before?));
    }
    if let Some(error) = errors.first() {
        return Err(format!(
            "{} of {connections} connections failed: {error}",
            errors.len()
        )
        .into());
    }
    let (mut run, mut times) = std::mem::take(&mut *total.lock().map_err(|_| "poisoned")?);
    run.cpu = cpu.first().copied().unwrap_or_default();
    run.elapsed = elapsed;
    run.under_load = percentiles(&mut times);
    Ok((run, cpu))
}

/// One connection's part, each measured request's latency pushed to `times`. Reaches both
/// barriers whatever happens, so that a failing connection cannot leave the others waiting;
/// returns what was counted, and the error that ended it early if one did.
fn worker(
    addr: SocketAddr,
    prepare: &Prepare,
    expect: u16,
    barrier: &Barrier,
    sent: &AtomicU64,
    times: &mut Vec<Duration>,
) -> (LoadRun, Option<String>) {
    let mut run = LoadRun::default();
    let set_up = (|| -> Result<(Conn, Vec<u8>)> {
        let mut conn = Conn::connect(addr)?;
        let request = prepare(&mut conn)?;
        let warm_until = Instant::now() + WARMUP;
        let mut scratch = LoadRun::default();
        while Instant::now() < warm_until {
            send(&mut conn, addr, &request, expect, &mut scratch)?;
        }
        Ok((conn, request))
    })();
    barrier.wait();
    barrier.wait();
    let (mut conn, request) = match set_up {
        Ok(ready) => ready,
        Err(err) => return (run, Some(err.to_string())),
    };
    let deadline = Instant::now() + WINDOW;
    // One clock read per request, as before latencies were recorded: the end of one request
    // is the start of the next.
    let mut started = Instant::now();
    while started < deadline && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS {
        if let Err(err) = send(&mut conn, addr, &request, expect, &mut run) {
            return (run, Some(err.to_string()));
        }
        let done = Instant::now();
        times.push(done - started);
        started = done;
    }
    (run, None)
}

/// One request and its response; reconnects when the server closed the connection, whether
/// it said so (`Connection: close`) or the next request finds it closed.
fn send(
    conn: &mut Conn,
    addr: SocketAddr,
    request: &[u8],
    expect: u16,
    run: &mut LoadRun,
) -> Result<()> {
    let response = match conn.round_trip(request) {
        Ok(response) => response,
        Err(_) if conn.served() > 0 => {
            *conn = Conn::connect(addr)?;
            run.reconnects += 1;
            conn.round_trip(request)?
        }
        Err(err) => return Err(err),
    };
    run.requests += 1;
    check(&response, expect, run);
    if response.close {
        *conn = Conn::connect(addr)?;
        run.reconnects += 1;
    }
    Ok(())
}

fn check(response: &Response, expect: u16, run: &mut LoadRun) {
    if response.status != expect {
        run.unexpected += 1;
        if run.first_unexpected.is_none() {
            let body = String::from_utf8_lossy(&response.body);
            run.first_unexpected = Some(format!(
                "{} (expected {expect}): {}",
                response.status,
                body.chars().take(200).collect::<String>()
            ));
        }
    }
}

/// How long a paced run sends, after one warm-up request per connection.
const PACED_WINDOW: Duration = Duration::from_secs(2);

/// Latency at a fixed request rate: `connections` connections together send `rate` requests a
/// second, each on its own evenly spaced schedule (staggered so that they do not all fire at
/// once). Each request is timed from when it was due, not from when it could be sent, so a
/// stall shows in every request queued behind it rather than being hidden by the wait
/// (no coordinated omission). Unlike [`load`], the server is not saturated: at a rate it
/// can serve, the latency is its own and the hop's, not the time spent queued behind the
/// other connections.
pub(super) fn paced(
    addr: SocketAddr,
    connections: usize,
    rate: u64,
    prepare: &Prepare,
    expect: u16,
) -> Result<Latency> {
    let connections_u32 = u32::try_from(connections.max(1))?;
    let interval = Duration::from_secs(1) * connections_u32 / u32::try_from(rate.max(1))?;
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut workers = Vec::with_capacity(connections);
    for index in 0..connections_u32 {
        let (barrier, prepare) = (Arc::clone(&barrier), Arc::clone(prepare));
        workers.push(std::thread::spawn(
            move || -> Result<Vec<Duration>, String> {
                let set_up = (|| -> Result<(Conn, Vec<u8>)> {
                    let mut conn = Conn::connect(addr)?;
                    let request = prepare(&mut conn)?;
                    send(&mut conn, addr, &request, expect, &mut LoadRun::default())?;
                    Ok((conn, request))
                })();
                barrier.wait();
                let (mut conn, request) = set_up.map_err(|err| err.to_string())?;
                let start = Instant::now() + interval * index / connections_u32;
                let end = start + PACED_WINDOW;
                let mut run = LoadRun::default();
                let mut times = Vec::new();
                let mut due = start;
                while due < end {
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    send(&mut conn, addr, &request, expect, &mut run).map_err(|e| e.to_string())?;
                    times.push(due.elapsed());
                    due += interval;
                }
                match run.first_unexpected {
                    Some(first) => Err(format!("paced run: {first}")),
                    None => Ok(times),
                }
            },
        ));
    }
    barrier.wait();
    let mut times = Vec::new();
    for worker in workers {
        times.extend(
            worker
                .join()
                .map_err(|_| "a paced load thread panicked")??,
        );
    }
    percentiles(&mut times).ok_or_else(|| "a paced run timed no request".into())
}

/// Latency percentiles: of sequential requests on one kept-alive connection, or of a load
/// run's requests.
#[derive(Debug, Clone, Copy)]
pub(super) struct Latency {
    pub(super) p50: Duration,
    pub(super) p99: Duration,
    pub(super) samples: usize,
}

/// Sends the request `prepare` builds on one connection, one at a time, and times each.
pub(super) fn latency(addr: SocketAddr, prepare: &Prepare, expect: u16) -> Result<Latency> {
    let mut conn = Conn::connect(addr)?;
    let request = prepare(&mut conn)?;
    let mut run = LoadRun::default();
    let mut times = Vec::with_capacity(LATENCY_REQUESTS);
    let stop_at = Instant::now() + LATENCY_TIME_CAP;
    for i in 0..LATENCY_WARMUP + LATENCY_REQUESTS {
        if Instant::now() >= stop_at {
            break;
        }
        let started = Instant::now();
        send(&mut conn, addr, &request, expect, &mut run)?;
        if i >= LATENCY_WARMUP {
            times.push(started.elapsed());
        }
    }
    if let Some(first) = run.first_unexpected {
        return Err(format!("latency run: {first}").into());
    }
    Ok(percentiles(&mut times).unwrap_or(Latency {
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        samples: 0,
    }))
}

/// The median and 99th percentile (nearest rank) of `times`, which it sorts; `None` if empty.
fn percentiles(times: &mut [Duration]) -> Option<Latency> {
    if times.is_empty() {
        return None;
    }
    times.sort_unstable();
    let at = |fraction: f64| -> Duration {
        let index = ((times.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
        times.get(index).copied().unwrap_or_default()
    };
    Some(Latency {
        p50: at(0.50),
        p99: at(0.99),
        samples: times.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_user_plus_system_time_after_any_command_name() {
        let stat = "4242 (mcp (auth) server) S 1 4242 4242 0 -1 4194560 1370 0 0 0 \
                    250 37 0 0 20 0 3 0 123 456 789";
        assert_eq!(parse_cpu_ticks(stat).expect("parsed"), 287);
        assert!(parse_cpu_ticks("4242 (name) S 1").is_err());
    }

    #[test]
    fn a_connection_the_server_closed_silently_is_opened_again() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            // Two connections, one answer each, closed without `Connection: close`.
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).expect("read");
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .expect("write");
            }
        });
        let request = super::super::http::request("GET", addr, "/", &[], b"");
        let mut conn = Conn::connect(addr).expect("connect");
        let mut run = LoadRun::default();
        for _ in 0..2 {
            send(&mut conn, addr, &request, 200, &mut run).expect("answered");
        }
        assert_eq!((run.requests, run.reconnects, run.unexpected), (2, 1, 0));
    }

    #[test]
    fn percentiles_are_nearest_ranks() {
        let mut times: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let latency = percentiles(&mut times).expect("some");
        assert_eq!(
            (latency.p50, latency.p99, latency.samples),
            (Duration::from_micros(100), Duration::from_micros(198), 200)
        );
        assert!(percentiles(&mut []).is_none());
    }

    #[test]
    fn the_cpu_clock_reads_a_live_process() {
        let clock = CpuClock::new(std::process::id(), 100);
        clock.read().expect("this process's CPU time");
    }
}
