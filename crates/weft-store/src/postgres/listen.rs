//! Wake-ups: a dedicated connection `LISTEN`s on channel `weft` (signals sent, leases
//! released) and wakes whoever waits on the store's `Notify`. It reconnects after a
//! failure. Only an early wake-up: every waiter polls too.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel weft notifies on.
pub(crate) const CHANNEL: &str = "weft";

/// Listens until the store's runtime stops.
pub(crate) async fn run(config: tokio_postgres::Config, wakeup: Arc<Notify>) {
    loop {
        match listen_once(&config, &wakeup).await {
            Ok(()) => tracing::debug!("the LISTEN connection closed; reconnecting"),
            Err(err) => tracing::debug!(error = %err, "the LISTEN connection failed; reconnecting"),
        }
        // A lost connection may have hidden a notification: wake everyone once.
        wakeup.notify_waiters();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(config: &tokio_postgres::Config, wakeup: &Notify) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| super::describe(&e))?;
    // The connection is polled (below) for the client's `LISTEN` to go through.
    let listen = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| super::describe(&e))?;
        // Keep the client (and so the connection) alive while messages are read.
        std::future::pending::<()>().await;
        Ok::<(), String>(())
    };
    let messages = async {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => wakeup.notify_waiters(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(super::describe(&e)),
                None => return Ok(()),
            }
        }
    };
    tokio::select! {
        result = listen => result,
        result = messages => result,
    }
}
