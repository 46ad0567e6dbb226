//! Admission of the HTTP door's writes (SQS sends, SNS publishes) against
//! the broker's resource alarms, the disk floor and the memory ceiling, as
//! the Kafka and AMQP doors admit theirs: a write waits while an alarm is
//! on, for at most [`ADMISSION_WAIT`] so the request stays within an SDK's
//! timeouts, and is then refused with an error the SDKs retry. It knows
//! the alarms' API only, not how free space is measured nor any wire format.

use std::sync::Arc;
use std::time::Duration;

use conveyor_core::alarms::ResourceAlarms;
use tracing::info;

/// How long a write waits for the alarms to clear before it is refused.
/// Well under the AWS SDKs' read timeouts (boto3's is 60 s).
pub const ADMISSION_WAIT: Duration = Duration::from_secs(5);

/// A write an alarm held past [`ADMISSION_WAIT`]; carries the alarm's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub reason: &'static str,
}

impl Held {
    /// What the client is told.
    pub fn message(self) -> String {
        format!("the broker is {}: the message was not stored; retry later", self.reason)
    }
}

/// Admits a write of `bytes`: at once when no alarm is on and the bytes fit
/// above the disk floor, otherwise once the alarms clear, or [`Held`] after
/// [`ADMISSION_WAIT`]. Nothing is written before this returns Ok.
pub async fn admit(alarms: &Arc<ResourceAlarms>, bytes: u64) -> Result<(), Held> {
    if alarms.try_admit(bytes) {
        return Ok(());
    }
    let reason = alarms.measured().alarms.reason();
    info!(reason, "HTTP write held by a resource alarm");
    match tokio::time::timeout(ADMISSION_WAIT, alarms.admit(bytes)).await {
        Ok(()) => Ok(()),
        Err(_) => Err(Held {
            reason: alarms.measured().alarms.reason(),
        }),
    }
}
