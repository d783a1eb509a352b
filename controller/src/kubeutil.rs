//! Small helpers around kube-rs errors and objects.

/// The HTTP status code of an API error, if the error is one.
pub fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The object does not exist (404).
pub fn is_not_found(error: &kube::Error) -> bool {
    api_code(error) == Some(404)
}

/// The object already exists (409 AlreadyExists on create).
pub fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

/// A resourceVersion conflict (409 Conflict on update).
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason != "AlreadyExists")
}
