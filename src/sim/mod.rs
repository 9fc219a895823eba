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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use clock::{Clock, SystemClock};
use handler::{Decision, Incoming, MAX_BODY_BYTES, Service};
use reply::Reply;
pub use scenario::{
    AccessKey, MAX_CLOCK_SKEW_SECONDS, NOT_FOUND_CODE, NOT_FOUND_MESSAGE, Scenario,
    ScriptedResponse, TokenGrant,
};
use stats::StatsRecorder;
pub use stats::{RECENT_REQUESTS, RecordedRequest, Stats};

/// Most blocking tasks at once: each request's latency and delay are waited
/// out on one, so this many slow responses can be pending before more queue.
const MAX_BLOCKING_THREADS: usize = 256;

/// A running simulator. Dropping it stops it like [`Simulator::shutdown`].
pub struct Simulator {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Arc<StopSignal>,
    stop_accepting: watch::Sender<bool>,
    stats: Arc<StatsRecorder>,
    context: Arc<SharedState>,
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

        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("failed to listen on {listen}"))?;
        listener
            .set_nonblocking(true)
            .context("failed to configure the listening socket")?;
        let addr = listener
            .local_addr()
            .context("the simulator's listener has no address")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name("simulator")
            .enable_all()
            .build()
            .context("failed to start the simulator's runtime")?;

        let stats = Arc::new(StatsRecorder::default());
        let service = Arc::new(Service::new(scenario, clock, Arc::clone(&stats)));
        let stop = Arc::new(StopSignal::default());
        let (stop_accepting, accepting) = watch::channel(false);
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .context("failed to register the listening socket")?
        };
        let context = Arc::new(SharedState {
            service,
            stop: Arc::clone(&stop),
            stats: Arc::clone(&stats),
            open_connections: AtomicUsize::new(0),
        });
        runtime.spawn(accept_loop(listener, Arc::clone(&context), accepting));
        let simulator = Simulator {
            addr,
            runtime: Some(runtime),
            stop,
            stop_accepting,
            stats,
            context,
        };

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

    /// Stops accepting, ends pending latencies and delays at once, closes
    /// every connection and frees the port before it returns.
    pub fn shutdown(mut self) {
        self.stop_runtime();
    }

    fn stop_runtime(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        self.stop.stop();
        let _ = self.stop_accepting.send(true);
        // Pending waits have ended, so responses in progress go out quickly.
        let context = Arc::clone(&self.context);
        runtime.block_on(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while context.open_connections.load(Ordering::Acquire) > 0
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(2));
        log::info!("simulator on {} stopped", self.url());
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop_runtime();
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

    /// Waits for `duration`, or less if the simulator stops meanwhile.
    fn wait(&self, duration: Duration) {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .wake
            .wait_timeout_while(stopped, duration, |stopped| !*stopped);
    }
}

/// The state every connection's handler shares.
struct SharedState {
    service: Arc<Service>,
    stop: Arc<StopSignal>,
    stats: Arc<StatsRecorder>,
    /// Connections being served, so a shutdown can wait for their last responses.
    open_connections: AtomicUsize,
}

/// The error that makes hyper close a connection without a response: a `reset`.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted reset")
    }
}

impl std::error::Error for ResetConnection {}

/// Accepts connections until the stop signal changes, serving each on its own task with keep-alive.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    context: Arc<SharedState>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    log::warn!("the simulator failed to accept a connection: {error}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        context.open_connections.fetch_add(1, Ordering::AcqRel);
        let context = Arc::clone(&context);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let handler_context = Arc::clone(&context);
            let service = service_fn(move |request| handle(Arc::clone(&handler_context), request));
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.changed() => {
                    // Finish the response in progress, if any, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result
                && !error.to_string().contains("scripted reset")
            {
                log::debug!("a simulator connection ended with an error: {error}");
            }
            context.open_connections.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Reads one request, then decides and waits for its response on a blocking thread.
async fn handle(
    context: Arc<SharedState>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, ResetConnection> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(error) => {
            log::warn!(
                "failed to read the body of {} {}: {error}",
                parts.method,
                parts.uri
            );
            Vec::new()
        }
    };
    let incoming = Incoming {
        method: parts.method.as_str().to_owned(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let served = tokio::task::spawn_blocking(move || serve(&incoming, &context)).await;
    match served {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err(ResetConnection),
        Err(error) => {
            log::error!("a simulator task failed: {error}");
            Err(ResetConnection)
        }
    }
}

/// Decides and waits for the response to one request; `None` means reset the connection.
fn serve(request: &Incoming, context: &SharedState) -> Option<hyper::Response<Full<Bytes>>> {
    let SharedState {
        service,
        stop,
        stats,
        ..
    } = context;
    let method = request.method.as_str();
    let target = request.target.as_str();
    stats.begin(RecordedRequest {
        method: method.to_owned(),
        path: target.to_owned(),
        headers: request.headers.clone(),
    });

    let request_id = random_request_id();
    let decision = catch_unwind(AssertUnwindSafe(|| service.decide(request, &request_id))).unwrap_or_else(|panic| {
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
        return None;
    }
    log::debug!("{method} {target} -> {status} (request id {request_id})");
    Some(decision.reply.into_response(service.now()))
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
