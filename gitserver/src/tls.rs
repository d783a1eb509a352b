//! The TLS crypto provider the HTTP clients (webhook delivery, forge client) need.
//!
//! The workspace builds reqwest without a rustls provider so that ring, which kube links,
//! is the only one; rustls then needs a process-wide default before the first client is
//! built. Installing ring here when none is installed keeps the library usable from any
//! process (tests, the controller's tests, the harness) without set-up, and leaves a
//! provider the process installed itself untouched.

/// Installs rustls' ring provider as the process default, unless one is installed.
pub(crate) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: a provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
