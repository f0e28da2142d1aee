//! Sending and settling side by side. Operations in flight wait for the state store too (a
//! journal batch, an owner look-up, a saved group record), and a future that waits for a pooled
//! connection, or holds one, moves only when it is polled: a settler that awaited its own
//! writes between polls of the operations could wait for a connection an operation held.

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

/// The future that drives `sent` to its end, to be joined with the settling (polled with it,
/// so always polled), and the receiver the settling takes each item from as it comes. Once the
/// receiver is dropped (the settling stopped on an error, say), the future ends and drops
/// `sent`: the operations still in flight are not awaited.
pub(super) fn driven<T>(
    sent: impl Stream<Item = T>,
) -> (impl Future<Output = ()>, mpsc::UnboundedReceiver<T>) {
    let (items, received) = mpsc::unbounded_channel();
    let driving = async move {
        let mut sent = std::pin::pin!(sent);
        loop {
            tokio::select! {
                item = sent.next() => {
                    let Some(item) = item else { break };
                    if items.send(item).is_err() {
                        break;
                    }
                }
                () = items.closed() => break,
            }
        }
    };
    (driving, received)
}
