//! Telling a target that is down from records it refuses. Operations that fail for a reason that
//! may be the target's are held in doubt; after [`IN_DOUBT_LIMIT`] of them in a row, or at the
//! end of a stage, one probe request that any working target answers decides.

use std::sync::OnceLock;

use crate::apply::{CheckFailure, ScimClient, TargetFailure};

/// How many failures in doubt wait before the target is asked whether it is up.
pub(super) const IN_DOUBT_LIMIT: usize = 3;

/// Whether the target was found down in this cycle, and why.
#[derive(Default)]
pub(super) struct OutageWatch {
    /// Set once; from then on nothing more is sent this cycle.
    down: OnceLock<String>,
}

impl OutageWatch {
    pub(super) fn is_down(&self) -> bool {
        self.down.get().is_some()
    }

    /// Probes the target about these failures in doubt; `true` (and nothing more is sent) when
    /// it is down. When every one was a 403, a 403 to the probe too means the credentials may do
    /// nothing any more (revoked scopes), not one resource refused.
    pub(super) async fn target_down(
        &self,
        client: &ScimClient,
        in_doubt: impl IntoIterator<Item = Option<TargetFailure>>,
    ) -> bool {
        if self.is_down() {
            return true;
        }
        let all_forbidden = in_doubt
            .into_iter()
            .all(|failure| failure.is_some_and(|f| f.forbidden));
        match client.probe().await {
            Err(e) if e.status() == Some(403) && !all_forbidden => false,
            Err(e) if e.target_unavailable() => {
                let hint = CheckFailure::from(e);
                tracing::error!(error = %hint, "the target is down; the cycle stops");
                let _ = self.down.set(hint.to_string());
                true
            }
            _ => false,
        }
    }

    pub(super) fn reason(self) -> Option<String> {
        self.down.into_inner()
    }
}

/// How a cycle that found the target down is described in the history and by `channels`.
pub fn outage_text(reason: &str, not_sent: u64) -> String {
    format!(
        "target unreachable: {reason}; {not_sent} operations not sent and counted against no \
         record: the next cycle sends them"
    )
}
