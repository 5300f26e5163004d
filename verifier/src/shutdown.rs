//! How `tuf-verifier serve` stops. SIGINT (Ctrl-C) and SIGTERM (what systemd, docker and
//! kubernetes send) stop it the same way: it stops accepting connections, lets the
//! requests in flight finish for at most `shutdown_grace`, and removes the demo's
//! temporary directory. A second signal, or the end of the grace period, ends the
//! requests still in flight; the exit status then says so ([`EXIT_IN_FLIGHT_ENDED`]).
//!
//! The signals are listened for from the start of `serve`, before the demo is set up
//! or the first refresh is made, so that a signal at any point stops cleanly.

use tokio::sync::watch;

/// The exit status of `serve` when it stopped with requests still in flight (the grace
/// period ended, or a second signal came).
pub const EXIT_IN_FLIGHT_ENDED: u8 = 3;

/// Which signal asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignalKind {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl std::fmt::Display for StopSignalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        })
    }
}

/// The stop requests received so far, shared by whoever must react to them.
#[derive(Debug, Clone)]
pub struct StopRequests {
    received: watch::Receiver<u32>,
}

impl StopRequests {
    /// Waits until at least `count` stop signals have come (returns at once if they have).
    async fn wait_for(&mut self, count: u32) {
        // An error means the listener is gone: no signal can come any more.
        if self.received.wait_for(|n| *n >= count).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits for the first stop signal.
    pub async fn requested(mut self) {
        self.wait_for(1).await;
    }

    /// Waits for a second stop signal (the operator insisting).
    pub async fn insisted(mut self) {
        self.wait_for(2).await;
    }

    /// Stop requests that a test or an embedding triggers by hand: the sender counts
    /// them like signals.
    #[cfg(test)]
    pub fn manual() -> (watch::Sender<u32>, Self) {
        let (sender, received) = watch::channel(0);
        (sender, Self { received })
    }
}

/// Starts listening for SIGINT and SIGTERM. Must be called inside the tokio runtime.
pub fn listen() -> StopRequests {
    let (sender, received) = watch::channel(0u32);
    let mut signals = Signals::new();
    tokio::spawn(async move {
        loop {
            let kind = signals.next().await;
            sender.send_modify(|n| *n = n.saturating_add(1));
            if *sender.borrow() == 1 {
                tracing::info!(signal = %kind, "stopping: no new connections; finishing the requests in flight");
            } else {
                tracing::warn!(signal = %kind, "stopping now: ending the requests still in flight");
            }
        }
    });
    StopRequests { received }
}

/// The process's SIGINT and SIGTERM listeners, registered once, so that no signal is
/// lost between two waits.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let register = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(listener) => Some(listener),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for {name}: it stops the proxy without finishing requests");
                    None
                }
            };
            Self {
                interrupt: register(SignalKind::interrupt(), "SIGINT"),
                terminate: register(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) -> StopSignalKind {
        #[cfg(unix)]
        {
            async fn received(listener: &mut Option<tokio::signal::unix::Signal>) {
                match listener {
                    Some(listener) => {
                        if listener.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = received(&mut self.interrupt) => StopSignalKind::Interrupt,
                () = received(&mut self.terminate) => StopSignalKind::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            StopSignalKind::Interrupt
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_request_stops_and_the_second_insists() {
        let (sender, stop) = StopRequests::manual();
        let requested = tokio::spawn(stop.clone().requested());
        let insisted = tokio::spawn(stop.clone().insisted());
        tokio::task::yield_now().await;
        assert!(!requested.is_finished());
        sender.send_modify(|n| *n += 1);
        requested.await.unwrap_or_else(|e| panic!("{e}"));
        tokio::task::yield_now().await;
        assert!(!insisted.is_finished());
        sender.send_modify(|n| *n += 1);
        insisted.await.unwrap_or_else(|e| panic!("{e}"));
        // Asked after the fact: answered at once.
        stop.clone().requested().await;
    }
}
