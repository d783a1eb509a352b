//! How the workspace's errors become one line of text.
//!
//! Every error type in the fleetbench crates follows one convention: its `Display` says only
//! what went wrong at its own layer ("cannot listen on 127.0.0.1:80"), and the lower-level
//! error that caused it is reachable through [`std::error::Error::source`], never also
//! written into the message. Printing the cause in both places makes a caller that walks
//! the chain print it twice, and a caller that prints only `Display` cannot tell where one
//! layer's words end and the next one's begin.
//!
//! Where an error leaves the program as text (an HTTP `Status` message, a status condition,
//! a log field, a command-line message) the whole chain is wanted, and [`chain`] writes it
//! the one way all of them use: each layer's message, outermost first, joined by `": "`.
//! That is the same text the older "message: cause" formatting produced, so nothing a user,
//! a test or a results file sees changes with the convention.
//!
//! Libraries outside the workspace do not all follow the convention: kube's errors write
//! their cause into their message *and* return it from `source()`, axum's return
//! themselves, reqwest's and hyper's keep deeper causes that a plain `Display` never
//! showed. A layer that wraps such an error holds it as [`Foreign`], which ends the chain
//! there: [`chain`] writes the library's own `Display` and stops, exactly as the older
//! "message: {source}" formatting did, and the wrapped error stays at hand for callers that
//! inspect it.
//!
//! The module lives in `fleet-api` because this is the crate the apiserver, the gitserver,
//! the controller and the harness all depend on; it needs nothing but `std`.

use std::error::Error;
use std::fmt;

/// The error's message followed by the message of each of its sources, joined by `": "`.
///
/// ```
/// # #[derive(Debug, thiserror::Error)]
/// # #[error("cannot read {path}")]
/// # struct ReadError { path: String, #[source] source: std::io::Error }
/// let error = ReadError {
///     path: "config.yaml".into(),
///     source: std::io::Error::other("permission denied"),
/// };
/// assert_eq!(
///     fleet_api::error::chain(&error),
///     "cannot read config.yaml: permission denied"
/// );
/// ```
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// An error from a library outside the workspace, held as the cause of one of ours.
///
/// Its `Display` is the library's, and it reports no `source()` of its own: the library
/// already decided how much of its cause to print, so [`chain`] (and any other walker of
/// `source()`) ends here instead of printing the library's causes again or adding ones its
/// message never showed. The wrapped error is public, for callers that match on it.
#[derive(Debug)]
pub struct Foreign<E>(pub E);

impl<E> Foreign<E> {
    /// The wrapped error.
    pub fn into_inner(self) -> E {
        self.0
    }
}

impl<E> From<E> for Foreign<E> {
    fn from(error: E) -> Self {
        Foreign(error)
    }
}

impl<E: fmt::Display> fmt::Display for Foreign<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: fmt::Debug + fmt::Display> Error for Foreign<E> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        /// With a cause.
        #[error("outer")]
        Wrapped(#[source] Inner),
        /// Without one.
        #[error("alone")]
        Alone,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);

    /// Prints its cause and also returns it, as kube's errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("library: {0}")]
    struct Library(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("ours")]
    struct Ours(#[source] Foreign<Library>);

    #[test]
    fn a_foreign_error_ends_the_chain_with_its_own_text() {
        let error = Ours(Foreign(Library(std::io::Error::other("io"))));
        assert_eq!(chain(&error), "ours: library: io");
    }

    #[test]
    fn joins_every_layer_outermost_first() {
        let error = Outer::Wrapped(Inner(std::io::Error::other("io")));
        assert_eq!(chain(&error), "outer: inner: io");
        assert_eq!(chain(&Outer::Alone), "alone");
    }
}
