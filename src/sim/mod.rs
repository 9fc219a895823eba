//! A local simulator of the TaurusDB API call
//! `GET /v3/{project_id}/instances/{instance_id}/backups/encryption`, for the
//! tests, the demo and `taurus-audit simulate`.
//!
//! It responds as the gateway and the service do. It routes the request,
//! checks the token or AK/SK signature (locking an access key after repeated
//! failures) and applies a per-identity quota. Then it waits the configured
//! latency and sends the [`Scenario`]'s scripted response for the instance.
//! It listens on loopback only. `docs/simulator.md` describes the scenario format and the responses.

mod auth;
mod clock;
mod handler;
mod quota;
mod reply;
mod scenario;
mod stats;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use clock::{Clock, SystemClock};
use handler::{Decision, Service};
use reply::Reply;
pub use scenario::{
    AccessKey, MAX_CLOCK_SKEW_SECONDS, NOT_FOUND_CODE, NOT_FOUND_MESSAGE, Scenario,
    ScriptedResponse, TokenGrant,
};
use stats::StatsRecorder;
pub use stats::{RECENT_REQUESTS, RecordedRequest, Stats};

/// Worker threads that take requests from the server. Each waits out its
/// request's latency and delay itself, so this many slow responses can be
/// pending at once before further requests queue.
const WORKER_THREADS: usize = 128;

const WORKER_STACK_BYTES: usize = 512 * 1024;

/// A running simulator. Dropping it stops it like [`Simulator::shutdown`].
pub struct Simulator {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<StopSignal>,
    stats: Arc<StatsRecorder>,
    workers: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// Starts a simulator for `scenario` on `listen`, which must be a loopback
    /// address (127.0.0.0/8 or ::1). Port 0 picks a free port.
    pub fn start(listen: SocketAddr, scenario: Scenario) -> anyhow::Result<Simulator> {
        Simulator::start_with_clock(listen, scenario, Arc::new(SystemClock))
    }

    pub(crate) fn start_with_clock(
        listen: SocketAddr,
        scenario: Scenario,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Simulator> {
        if !listen.ip().is_loopback() {
            bail!(
                "listen address {listen} is not a loopback address. \
                 The simulator listens only on 127.0.0.0/8 or ::1, such as 127.0.0.1:8080."
            );
        }
        scenario.validate()?;

        let server = tiny_http::Server::http(listen)
            .map_err(|error| anyhow!("failed to listen on {listen}: {error}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .context("the simulator's listener has no IP address")?;

        let stats = Arc::new(StatsRecorder::default());
        let service = Arc::new(Service::new(scenario, clock, Arc::clone(&stats)));
        let mut simulator = Simulator {
            addr,
            server: Arc::new(server),
            stop: Arc::new(StopSignal::default()),
            stats,
            workers: Vec::with_capacity(WORKER_THREADS),
        };
        for index in 0..WORKER_THREADS {
            let server = Arc::clone(&simulator.server);
            let stop = Arc::clone(&simulator.stop);
            let stats = Arc::clone(&simulator.stats);
            let service = Arc::clone(&service);
            // On error, dropping `simulator` stops the workers already started.
            let worker = thread::Builder::new()
                .name(format!("sim-worker-{index}"))
                .stack_size(WORKER_STACK_BYTES)
                .spawn(move || run_worker(&server, &service, &stop, &stats))
                .context("failed to start a simulator worker thread")?;
            simulator.workers.push(worker);
        }

        log::info!("simulator listening on {}", simulator.url());
        Ok(simulator)
    }

    /// Returns the bound address, with the port that port 0 picked.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the base URL, such as `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns a snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Stops the workers and closes the listening socket. Responses that
    /// wait out a latency or delay are sent at once.
    ///
    /// NOTE: tiny_http closes the listener on its accept thread shortly after
    /// this returns, not before. Connections that a client keeps alive stay
    /// open until the client closes them, and requests sent on them get no
    /// response.
    pub fn shutdown(mut self) {
        self.stop_workers();
    }

    fn stop_workers(&mut self) {
        if self.workers.is_empty() {
            return;
        }
        self.stop.stop();
        // Each unblock releases one worker waiting in `recv`.
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                log::error!("a simulator worker thread panicked");
            }
        }
        log::info!("simulator on {} stopped", self.url());
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

/// Returns a random request id: 32 lowercase hex digits, as the gateway's
/// `X-Request-Id` has.
pub fn random_request_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The workers' stop flag, with a condition variable that wakes waiting workers.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for `duration`, or less if the simulator stops meanwhile.
    fn wait(&self, duration: Duration) {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .wake
            .wait_timeout_while(stopped, duration, |stopped| !*stopped);
    }
}

fn run_worker(
    server: &tiny_http::Server,
    service: &Service,
    stop: &StopSignal,
    stats: &StatsRecorder,
) {
    while !stop.is_stopped() {
        match server.recv() {
            Ok(request) => serve(request, service, stop, stats),
            Err(error) => {
                if !stop.is_stopped() {
                    log::error!("the simulator failed to receive a request: {error}");
                }
            }
        }
    }
}

/// Returns the message of a panic payload, which is a `&str` or a `String`
/// for panics raised with a message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "no message"
    }
}

/// Decides, waits for and sends the response to one request.
fn serve(
    mut request: tiny_http::Request,
    service: &Service,
    stop: &StopSignal,
    stats: &StatsRecorder,
) {
    let method = request.method().as_str().to_owned();
    let target = request.url().to_owned();
    stats.begin(RecordedRequest {
        method: method.clone(),
        path: target.clone(),
        headers: request
            .headers()
            .iter()
            .map(|header| (header.field.to_string(), header.value.to_string()))
            .collect(),
    });

    let request_id = random_request_id();
    let decision = catch_unwind(AssertUnwindSafe(|| {
        service.decide(&mut request, &request_id)
    }))
    .unwrap_or_else(|panic| {
        log::error!(
            "the simulator panicked while handling {method} {target} (request id {request_id}), \
             so it responds with 500: {}",
            panic_message(panic.as_ref())
        );
        Decision {
            reply: Reply::internal_error(&request_id),
            wait: Duration::ZERO,
        }
    });
    if !decision.wait.is_zero() {
        stop.wait(decision.wait);
    }

    // Counted before sending, so that the stats include a response as soon
    // as the client has it.
    let status = decision.reply.counted_status();
    stats.finish(status);
    if decision.reply.reset {
        log::debug!("{method} {target} -> reset (request id {request_id})");
    } else {
        log::debug!("{method} {target} -> {status} (request id {request_id})");
    }

    let response = decision.reply.into_response(service.now());
    if let Err(error) = request.respond(response) {
        log::warn!(
            "failed to send the response to {method} {target} (request id {request_id}): {error}"
        );
    }
}
