//! Check-in recordings posted over HTTP by concurrent clients: the load both API benches
//! (`api`, `recording`) put on one or more daemons. Included by path next to `http`.

use crate::http;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Posts every `(check-in, body)` of `work` to `POST /v1/checkins/{id}/record` from
/// `clients` threads (client `i` talks to `addrs[i % addrs.len()]`), a fresh connection per
/// request; every answer must be 200. Returns the wall time and the sorted latencies, one per request.
pub fn record_from_clients(
    addrs: &[SocketAddr],
    work: Vec<(String, String)>,
    clients: usize,
    token: &str,
) -> (Duration, Vec<Duration>) {
    let requests = work.len();
    let queue = Arc::new(Mutex::new(work));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (queue, latencies, token) = (queue.clone(), latencies.clone(), token.to_string());
            let addr = addrs[i % addrs.len()];
            std::thread::spawn(move || {
                loop {
                    let Some((id, body)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let r = http::request(
                        addr,
                        "POST",
                        &format!("/v1/checkins/{id}/record"),
                        Some(&token),
                        Some(("application/json", body.as_bytes())),
                    );
                    let took = t.elapsed();
                    assert_eq!(r.status, 200, "{}", r.text());
                    latencies.lock().unwrap().push(took);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let wall = started.elapsed();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    assert_eq!(latencies.len(), requests);
    (wall, latencies)
}
