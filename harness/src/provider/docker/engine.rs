//! The Docker engine: which one we talk to, whether its API is new enough, and a bollard
//! client that speaks the engine's API version.
//!
//! Why this exists: testcontainers 0.27.3 builds its bollard 0.20.2 client for Docker API
//! 1.52 and never negotiates. It still works against older engines (this machine's is
//! 20.10, API 1.41) only because bollard 0.20.x builds request URLs with `Url::join` of an
//! absolute path, which drops the `/v1.52` prefix (bollard issue #736), so every request is
//! unversioned and the engine answers it at its own API version. That is an accident, so:
//! - the preflight asks the engine for its version with a request that is unversioned on
//!   purpose ([`query_version`] speaks HTTP to the socket itself) and refuses engines older
//!   than [`MIN_API_VERSION`] with a message that says what to do;
//! - our own calls (networks, partitions, cleanup, image checks) go through a client that
//!   negotiated the engine's version ([`connect`]), so they keep working if bollard's URLs
//!   ever get their prefix back;
//! - the workspace pins bollard to exactly testcontainers' version, and an integration test
//!   starts and stops a container through testcontainers against the real engine.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::SystemVersion;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;

/// The oldest Docker API this provider is tested against (Docker Engine 20.10).
///
/// What it uses goes back further (container init and labels need 1.25), but requests from
/// testcontainers are unversioned, so the engine reads their 1.52-shaped bodies at its own
/// version; 1.41 is the oldest version where that has been run and seen to work.
pub const MIN_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 41,
};

/// The API version testcontainers' and bollard's client is built for.
pub const CLIENT_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 52,
};

/// Where the engine is when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Bound on every engine call the preflight makes.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the engine cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `DOCKER_HOST` names something we cannot connect to.
    #[error(
        "DOCKER_HOST={host:?} is not supported: use unix:///path/to/docker.sock or tcp://HOST:PORT"
    )]
    UnsupportedHost {
        /// The value.
        host: String,
    },
    /// Nothing answers at the engine's address.
    #[error(
        "no Docker engine at {host}: {reason} (start the Docker daemon, or set DOCKER_HOST; the docker provider needs one, the embedded provider does not)"
    )]
    Unreachable {
        /// Where we looked.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// Something answers, or not, at the engine's address, and talking to it failed.
    #[error(
        "no Docker engine at {host}: {what} (start the Docker daemon, or set DOCKER_HOST; the docker provider needs one, the embedded provider does not)"
    )]
    Connect {
        /// Where we looked.
        host: String,
        /// What was being done.
        what: String,
        /// The transport's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The engine's answer to `/version` could not be read as one.
    #[error("the Docker engine at {host} answered GET /version unexpectedly: {what}")]
    Unreadable {
        /// Where.
        host: String,
        /// What could not be done with it.
        what: String,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The engine answered `/version` with something we cannot read.
    #[error("the Docker engine at {host} answered GET /version unexpectedly: {reason}")]
    BadAnswer {
        /// Where.
        host: String,
        /// What was wrong.
        reason: String,
    },
    /// The engine's API is older than the provider needs.
    #[error(
        "the Docker engine at {host} (Docker {engine}) speaks API {found}, older than the {required} fleetbench's docker provider needs: upgrade Docker Engine to 20.10 or newer"
    )]
    TooOld {
        /// Where.
        host: String,
        /// Engine release.
        engine: String,
        /// Its API version.
        found: ApiVersion,
        /// What we need.
        required: ApiVersion,
    },
    /// bollard could not build a client or negotiate a version.
    #[error("cannot set up a Docker client for {host}")]
    Client {
        /// Where.
        host: String,
        /// bollard's error.
        source: fleet_api::error::Foreign<bollard::errors::Error>,
    },
}

/// A Docker API version (`1.41`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major (always 1 so far).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s
            .trim()
            .split_once('.')
            .ok_or_else(|| format!("API version {s:?} is not MAJOR.MINOR"))?;
        let number = |part: &str| {
            part.parse::<u32>()
                .map_err(|_| format!("API version {s:?} is not MAJOR.MINOR"))
        };
        Ok(Self {
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// A Unix socket.
    Unix(PathBuf),
    /// Plain TCP (`tcp://` or `http://`).
    Tcp(String),
    /// Something only bollard can reach (TLS, SSH).
    Other(String),
}

impl DockerHost {
    /// The engine `DOCKER_HOST` names, or the default socket.
    pub fn from_env() -> Self {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
        Self::parse(&host, tls)
    }

    /// Parses a `DOCKER_HOST` value (`tls`: `DOCKER_TLS_VERIFY` is set).
    pub fn parse(host: &str, tls: bool) -> Self {
        let host = host.trim();
        if let Some(path) = host.strip_prefix("unix://") {
            DockerHost::Unix(PathBuf::from(path))
        } else if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .filter(|_| !tls)
        {
            DockerHost::Tcp(addr.trim_end_matches('/').to_string())
        } else {
            DockerHost::Other(host.to_string())
        }
    }
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerHost::Unix(path) => write!(f, "unix://{}", path.display()),
            DockerHost::Tcp(addr) => write!(f, "tcp://{addr}"),
            DockerHost::Other(host) => f.write_str(host),
        }
    }
}

/// What the engine said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Where it is.
    pub host: String,
    /// Docker Engine release (`20.10.24+dfsg1`).
    pub engine_version: String,
    /// Newest API version it speaks.
    pub api_version: ApiVersion,
    /// Oldest API version it accepts, when it says.
    pub min_api_version: Option<ApiVersion>,
    /// `linux/amd64`.
    pub platform: String,
}

impl EngineInfo {
    /// Reads the `/version` answer.
    pub fn from_version(host: &str, version: &SystemVersion) -> Result<Self, EngineError> {
        let bad = |reason: String| EngineError::BadAnswer {
            host: host.to_string(),
            reason,
        };
        let api_version = version
            .api_version
            .as_deref()
            .ok_or_else(|| bad("no ApiVersion".to_string()))?
            .parse()
            .map_err(bad)?;
        let min_api_version = version
            .min_api_version
            .as_deref()
            .and_then(|v| v.parse().ok());
        Ok(Self {
            host: host.to_string(),
            engine_version: version.version.clone().unwrap_or_default(),
            api_version,
            min_api_version,
            platform: format!(
                "{}/{}",
                version.os.as_deref().unwrap_or("?"),
                version.arch.as_deref().unwrap_or("?")
            ),
        })
    }

    /// Fails when the engine is older than [`MIN_API_VERSION`].
    pub fn check(&self) -> Result<(), EngineError> {
        if self.api_version < MIN_API_VERSION {
            return Err(EngineError::TooOld {
                host: self.host.clone(),
                engine: self.engine_version.clone(),
                found: self.api_version,
                required: MIN_API_VERSION,
            });
        }
        Ok(())
    }

    /// The version a client talking to this engine should use: the older of the engine's
    /// and [`CLIENT_API_VERSION`].
    pub fn negotiated(&self) -> ApiVersion {
        self.api_version.min(CLIENT_API_VERSION)
    }
}

/// Asks the engine `GET /version` without a version prefix (every engine answers that at
/// its own version), bounded by `timeout`.
pub async fn query_version(
    host: &DockerHost,
    timeout: Duration,
) -> Result<EngineInfo, EngineError> {
    let name = host.to_string();
    let unreachable = |reason: String| EngineError::Unreachable {
        host: name.clone(),
        reason,
    };
    let connect =
        |what: String, source: Box<dyn std::error::Error + Send + Sync>| EngineError::Connect {
            host: name.clone(),
            what,
            source,
        };
    let answer = tokio::time::timeout(timeout, async {
        match host {
            DockerHost::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                    connect(format!("cannot connect to {}", path.display()), e.into())
                })?;
                get_version(TokioIo::new(stream), &name).await
            }
            DockerHost::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|e| connect(format!("cannot connect to {addr}"), e.into()))?;
                get_version(TokioIo::new(stream), &name).await
            }
            DockerHost::Other(_) => {
                // TLS and SSH need bollard's transports; its /version request is unversioned
                // too (see the module docs), and the answer is the same document.
                let docker =
                    Docker::connect_with_defaults().map_err(|source| EngineError::Client {
                        host: name.clone(),
                        source: source.into(),
                    })?;
                docker
                    .version()
                    .await
                    .map_err(|e| connect("GET /version failed".to_string(), e.into()))
            }
        }
    })
    .await
    .map_err(|_| unreachable(format!("no answer to GET /version within {timeout:?}")))??;
    EngineInfo::from_version(&name, &answer)
}

async fn get_version<IO>(io: IO, host: &str) -> Result<SystemVersion, EngineError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let connect =
        |what: &str, source: Box<dyn std::error::Error + Send + Sync>| EngineError::Connect {
            host: host.to_string(),
            what: what.to_string(),
            source,
        };
    let unreadable =
        |what: &str, source: Box<dyn std::error::Error + Send + Sync>| EngineError::Unreadable {
            host: host.to_string(),
            what: what.to_string(),
            source,
        };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| connect("HTTP handshake failed", e.into()))?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get("/version")
        .header(http::header::HOST, "docker")
        .header(http::header::USER_AGENT, "fleetbench-preflight")
        .body(Empty::<Bytes>::new())
        .map_err(|e| unreadable("cannot build the request", e.into()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| connect("GET /version failed", e.into()))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| connect("reading the /version answer", e.into()))?
        .to_bytes();
    driver.abort();
    if !status.is_success() {
        return Err(EngineError::BadAnswer {
            host: host.to_string(),
            reason: format!("HTTP {status}: {}", String::from_utf8_lossy(&body).trim()),
        });
    }
    serde_json::from_slice(&body).map_err(|e| unreadable("not a version document", e.into()))
}

/// A bollard client for `host` that negotiated the engine's API version.
pub async fn connect(host: &DockerHost) -> Result<Docker, EngineError> {
    let name = host.to_string();
    let client_error = |source: bollard::errors::Error| EngineError::Client {
        host: name.clone(),
        source: source.into(),
    };
    let docker = Docker::connect_with_host(&name).map_err(client_error)?;
    tokio::time::timeout(PREFLIGHT_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| EngineError::Unreachable {
            host: name.clone(),
            reason: format!(
                "no answer while negotiating the API version within {PREFLIGHT_TIMEOUT:?}"
            ),
        })?
        .map_err(client_error)
}

/// The engine checked and a negotiated client for it.
#[derive(Debug, Clone)]
pub struct Engine {
    /// What the engine said about itself.
    pub info: EngineInfo,
    /// A client speaking the engine's API version.
    pub docker: Docker,
}

/// Preflight: finds the engine, checks its API version, and returns a negotiated client.
pub async fn preflight() -> Result<Engine, EngineError> {
    let host = DockerHost::from_env();
    let info = query_version(&host, PREFLIGHT_TIMEOUT).await?;
    info.check()?;
    let docker = connect(&host).await?;
    tracing::debug!(
        host = %info.host,
        engine = %info.engine_version,
        api = %info.api_version,
        client = %docker.client_version(),
        "docker engine ready"
    );
    Ok(Engine { info, docker })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn version(api: &str) -> SystemVersion {
        SystemVersion {
            version: Some("20.10.24".to_string()),
            api_version: Some(api.to_string()),
            min_api_version: Some("1.12".to_string()),
            os: Some("linux".to_string()),
            arch: Some("amd64".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn api_versions_parse_and_order_numerically() {
        let v: ApiVersion = "1.41".parse().expect("valid");
        assert_eq!(
            v,
            ApiVersion {
                major: 1,
                minor: 41
            }
        );
        assert!("1.9".parse::<ApiVersion>().expect("valid") < v);
        assert!(v < "1.52".parse().expect("valid"));
        assert_eq!(v.to_string(), "1.41");
        assert!("1".parse::<ApiVersion>().is_err());
        assert!("v1.41".parse::<ApiVersion>().is_err());
    }

    #[test]
    fn an_engine_older_than_the_minimum_is_refused_with_what_to_do() {
        let info = EngineInfo::from_version("unix:///x.sock", &version("1.40")).expect("parses");
        let error = info.check().expect_err("1.40 is too old").to_string();
        assert!(error.contains("API 1.40"), "{error}");
        assert!(error.contains("1.41"), "{error}");
        assert!(error.contains("upgrade Docker Engine"), "{error}");
        let ok = EngineInfo::from_version("unix:///x.sock", &version("1.41")).expect("parses");
        ok.check().expect("1.41 is enough");
        assert_eq!(ok.platform, "linux/amd64");
    }

    #[test]
    fn negotiation_picks_the_older_version() {
        let old = EngineInfo::from_version("h", &version("1.41")).expect("parses");
        assert_eq!(old.negotiated(), "1.41".parse().expect("valid"));
        let new = EngineInfo::from_version("h", &version("1.54")).expect("parses");
        assert_eq!(new.negotiated(), CLIENT_API_VERSION);
    }

    #[test]
    fn a_version_document_without_api_version_is_a_bad_answer() {
        let error = EngineInfo::from_version("h", &SystemVersion::default()).expect_err("no api");
        assert!(matches!(error, EngineError::BadAnswer { .. }), "{error}");
    }

    #[test]
    fn docker_host_values_are_classified() {
        assert_eq!(
            DockerHost::parse("unix:///run/user/1000/docker.sock", false),
            DockerHost::Unix(PathBuf::from("/run/user/1000/docker.sock"))
        );
        assert_eq!(
            DockerHost::parse("tcp://127.0.0.1:2375", false),
            DockerHost::Tcp("127.0.0.1:2375".to_string())
        );
        assert!(matches!(
            DockerHost::parse("ssh://me@box", false),
            DockerHost::Other(_)
        ));
        assert!(matches!(
            DockerHost::parse("tcp://box:2376", true),
            DockerHost::Other(_)
        ));
        assert_eq!(
            DockerHost::parse("unix:///var/run/docker.sock", false).to_string(),
            DEFAULT_DOCKER_HOST
        );
    }

    /// A fake engine on a Unix socket that records the request line and answers `status`
    /// with `body`.
    async fn fake_engine(
        status: &'static str,
        body: String,
    ) -> (tempfile::TempDir, PathBuf, tokio::task::JoinHandle<String>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let handle = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&request)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        });
        (dir, path, handle)
    }

    #[tokio::test]
    async fn the_preflight_request_is_unversioned_and_reads_the_engine_version() {
        let body = r#"{"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}"#;
        let (_dir, path, handle) = fake_engine("200 OK", body.to_string()).await;
        let info = query_version(&DockerHost::Unix(path), Duration::from_secs(5))
            .await
            .expect("answers");
        let request_line = tokio::time::timeout(Duration::from_secs(5), handle)
            .await
            .expect("bounded")
            .expect("fake engine ran");
        assert_eq!(request_line, "GET /version HTTP/1.1");
        assert_eq!(info.api_version, "1.41".parse().expect("valid"));
        assert_eq!(info.min_api_version, Some("1.12".parse().expect("valid")));
        assert_eq!(info.engine_version, "20.10.24+dfsg1");
    }

    #[tokio::test]
    async fn an_old_engine_fails_the_check_with_a_clear_message() {
        let body = r#"{"Version":"19.03.0","ApiVersion":"1.40","Os":"linux","Arch":"amd64"}"#;
        let (_dir, path, _handle) = fake_engine("200 OK", body.to_string()).await;
        let info = query_version(&DockerHost::Unix(path), Duration::from_secs(5))
            .await
            .expect("answers");
        let error = info.check().expect_err("too old").to_string();
        assert!(error.contains("Docker 19.03.0"), "{error}");
        assert!(error.contains("speaks API 1.40"), "{error}");
    }

    #[tokio::test]
    async fn an_error_answer_is_reported_with_its_status() {
        let (_dir, path, _handle) = fake_engine(
            "500 Internal Server Error",
            "{\"message\":\"boom\"}".to_string(),
        )
        .await;
        let error = query_version(&DockerHost::Unix(path), Duration::from_secs(5))
            .await
            .expect_err("500");
        let text = error.to_string();
        assert!(text.contains("500") && text.contains("boom"), "{text}");
    }

    #[tokio::test]
    async fn a_missing_socket_says_no_engine_and_how_to_fix_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = DockerHost::Unix(dir.path().join("absent.sock"));
        let error = query_version(&host, Duration::from_secs(5))
            .await
            .expect_err("no engine")
            .to_string();
        assert!(error.contains("no Docker engine at unix://"), "{error}");
        assert!(
            error.contains("start the Docker daemon, or set DOCKER_HOST"),
            "{error}"
        );
    }
}
