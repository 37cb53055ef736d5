//! The LISTEN connection: one dedicated connection (not from the pool) that waits for
//! `NOTIFY smsbridge_due` from any box and rings the handle's due-work `Notify`. When the
//! connection is lost (the database restarted, a network cut, `pg_terminate_backend`) it
//! reconnects by itself with the shared backoff, and rings once after each (re)connect:
//! a NOTIFY sent while nobody listened is lost, so the dispatcher looks anyway.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use super::super::Shared;
use super::CHANNEL;
use crate::backoff::Backoff;

pub(super) async fn run<T>(
    mut config: tokio_postgres::Config,
    tls: T,
    shared: Arc<Shared>,
    refresh: Arc<Notify>,
) where
    T: MakeTlsConnect<tokio_postgres::Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync,
    T::TlsConnect: Send + Sync,
    <T::TlsConnect as TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let name = format!(
        "{}:listen",
        config.get_application_name().unwrap_or("smsbridge")
    );
    config.application_name(name);
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut failures: u32 = 0;
    loop {
        if let Ok((client, mut connection)) = config.connect(tls.clone()).await {
            let rings = Arc::clone(&shared);
            let counts = Arc::clone(&refresh);
            let driver = tokio::spawn(async move {
                while let Some(message) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    match message {
                        Ok(AsyncMessage::Notification(_)) => {
                            rings.due_work.notify_one();
                            counts.notify_one();
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .is_ok()
            {
                failures = 0;
                LISTENING.fetch_add(1, Ordering::Relaxed);
                shared.due_work.notify_one();
                refresh.notify_one();
                // Holds the client (dropping it would end the session) until the
                // connection ends.
                let _ = driver.await;
                drop(client);
            } else {
                driver.abort();
            }
        }
        tokio::time::sleep(backoff.delay(failures)).await;
        failures = failures.saturating_add(1);
    }
}

/// How many times a LISTEN connection was (re)established in this process; for tests.
pub(super) static LISTENING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
