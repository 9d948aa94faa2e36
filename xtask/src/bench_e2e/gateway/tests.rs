use super::*;

fn run(requests: u64, cpu_ms: u64, upstream_ms: u64, p99_us: u64) -> Result<Run, String> {
    Ok((
        LoadRun {
            requests,
            cpu: Duration::from_millis(cpu_ms),
            elapsed: Duration::from_secs(1),
            under_load: Some(Latency {
                p50: Duration::from_micros(p99_us / 2),
                p99: Duration::from_micros(p99_us),
                samples: 1000,
            }),
            ..LoadRun::default()
        },
        Duration::from_millis(upstream_ms),
    ))
}

fn report(seen: &str) -> Report {
    Report {
        setting: "test".to_owned(),
        seen: seen.to_owned(),
        // Direct: the run's CPU is the upstream's; 8 µs at best.
        direct: vec![run(100_000, 900, 900, 900), run(100_000, 800, 800, 1_000)],
        // Through the gateway: 30 µs at best, the upstream 8.5 µs.
        gateway: vec![
            run(20_000, 600, 170, 3_500),
            run(20_000, 700, 180, 3_000),
            Err("refused".to_owned()),
        ],
        sequential: [
            Ok(Latency {
                p50: Duration::from_micros(60),
                p99: Duration::from_micros(90),
                samples: 1000,
            }),
            Err("closed".to_owned()),
        ],
        paced: [
            vec![Ok(Latency {
                p50: Duration::from_micros(100),
                p99: Duration::from_micros(400),
                samples: 20_000,
            })],
            vec![
                Ok(Latency {
                    p50: Duration::from_micros(150),
                    p99: Duration::from_micros(900),
                    samples: 20_000,
                }),
                Ok(Latency {
                    p50: Duration::from_micros(160),
                    p99: Duration::from_micros(700),
                    samples: 20_000,
                }),
            ],
        ],
        warnings: [(0, Vec::new()), (1, vec!["x WARN y".to_owned()])],
    }
}

#[test]
fn the_report_gives_the_least_figures_the_difference_and_the_goals() {
    let text =
        report("subject=- client=bench-machine scopes=mcp:tools authorization=absent").render();
    for expected in [
        "| gateway CPU per request | – | 30.0 µs | 30.0 µs |",
        "| upstream CPU per request | 8.0 µs | 8.5 µs | (same work) |",
        "| both processes' CPU per request | 8.0 µs | 38.5 µs | +30.5 µs |",
        "| requests per second (measured process busy) | 100000 (80%) | 20000 (70%) | – |",
        "| p99 at 64 connections, saturated | 0.900 ms | 3.000 ms | +2.100 ms |",
        "| p99 at 64 connections, 10000 requests/s | 0.400 ms | 0.700 ms | +0.300 ms |",
        "| p50, one connection, sequential | 0.060 ms | – | – |",
        "(0.640 ms direct, 3.200 ms through the gateway)",
        "- [ ] the gateway adds ≤ 25 µs of CPU per request: 30.0 µs",
        "- [x] the gateway adds ≤ 1 ms to p99 at 64 connections (10000 requests/s): +0.300 ms",
        "- gateway round 3: failed: refused",
        "- gateway sequential latency: failed: closed",
        "- the gateway logged 1 warnings or errors, first:\n  `x WARN y`",
    ] {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }
    assert!(!text.contains("did not see"), "{text}");
}

#[test]
fn a_forwarded_token_or_a_missing_identity_is_a_problem() {
    let text = report("subject=- client=- scopes=- authorization=present").render();
    assert!(
        text.contains("- the upstream did not see what the gateway should forward"),
        "{text}"
    );
}
