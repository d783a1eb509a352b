//! Fleet-style (wrangler) conditions: set by type, timestamps moved only on real changes.

use fleet_api::Condition;

/// Condition type `Ready`.
pub const READY: &str = "Ready";
/// Condition type `Accepted`.
pub const ACCEPTED: &str = "Accepted";
/// Condition type `GitPolling`.
pub const GIT_POLLING: &str = "GitPolling";
/// Condition type `Reconciling`.
pub const RECONCILING: &str = "Reconciling";
/// Condition type `Stalled`.
pub const STALLED: &str = "Stalled";
/// Condition type `Processed` (Cluster, ClusterGroup).
pub const PROCESSED: &str = "Processed";

/// Current time as Fleet writes it into conditions (RFC 3339, seconds, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Sets condition `type_` in `conditions`. `lastUpdateTime` moves when status, reason or
/// message change; `lastTransitionTime` when status changes. An unchanged condition is left
/// exactly as it was, so recomputing a status never produces a spurious diff.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
) {
    let status = if status { "True" } else { "False" };
    let now = now_rfc3339();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status == status && existing.reason == reason && existing.message == message
            {
                return;
            }
            if existing.status != status {
                existing.last_transition_time = now.clone();
            }
            existing.status = status.to_owned();
            existing.reason = reason.to_owned();
            existing.message = message.to_owned();
            existing.last_update_time = now;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            last_update_time: now.clone(),
            last_transition_time: now,
        }),
    }
}

/// Sets a condition from an optional error: True without message, or False with reason
/// `Error` and the error's message (wrangler's `SetError`).
pub fn set_error(conditions: &mut Vec<Condition>, type_: &str, error: Option<&str>) {
    match error {
        None => set(conditions, type_, true, "", ""),
        Some(message) => set(conditions, type_, false, "Error", message),
    }
}

/// The condition of `type_`, if present.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_conditions_keep_their_timestamps() {
        let mut conditions = vec![Condition {
            type_: READY.into(),
            status: "True".into(),
            last_update_time: "2020-01-01T00:00:00Z".into(),
            last_transition_time: "2020-01-01T00:00:00Z".into(),
            ..Default::default()
        }];
        set(&mut conditions, READY, true, "", "");
        assert_eq!(conditions[0].last_update_time, "2020-01-01T00:00:00Z");
        set_error(&mut conditions, READY, Some("broken"));
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions[0].reason, "Error");
        assert_ne!(conditions[0].last_transition_time, "2020-01-01T00:00:00Z");
        let transition = conditions[0].last_transition_time.clone();
        set_error(&mut conditions, READY, Some("still broken"));
        assert_eq!(conditions[0].last_transition_time, transition);
        assert_eq!(conditions[0].message, "still broken");
        set(&mut conditions, STALLED, false, "", "");
        assert_eq!(conditions.len(), 2);
        assert!(now_rfc3339().ends_with('Z'));
    }
}
