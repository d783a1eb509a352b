//! Runs `git http-backend` as a CGI program: one process per request, bodies streamed.
//!
//! This is the component Fleet's own e2e git server uses, so protocol behaviour (v0/v1/v2,
//! gzip request bodies, shallow fetches, report-status) is git's, not ours. The request
//! body is copied into the process while its output is parsed (CGI headers first, then
//! the body streamed to the client), so neither side is buffered whole and a large push
//! or clone uses constant memory. Each process is bounded in time and request size and is
//! killed if the client goes away.

use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use fleet_api::error::{Foreign, chain};
use futures::{Stream, StreamExt as _};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};
use tokio::process::{ChildStdin, Command};
use tokio::task::JoinHandle;

/// A request body as a stream of chunks.
pub(crate) type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, axum::Error>> + Send>>;

/// The CGI meta-variables and body of one request.
pub(crate) struct CgiRequest {
    pub git_binary: PathBuf,
    pub project_root: PathBuf,
    pub path_info: String,
    pub method: String,
    pub query: String,
    pub content_type: Option<String>,
    pub content_length: Option<String>,
    pub content_encoding: Option<String>,
    pub git_protocol: Option<String>,
    pub remote_user: Option<String>,
    pub remote_addr: String,
    pub body: Option<BodyStream>,
    pub max_request_bytes: u64,
    pub timeout: Duration,
}

/// The response head, a streaming body, and the process's end.
pub(crate) struct CgiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: axum::body::Body,
    /// Resolves when the process has exited (after the body was written).
    pub finished: JoinHandle<CgiExit>,
}

/// How the process ended.
#[derive(Debug, Clone)]
pub(crate) struct CgiExit {
    /// It exited with status 0 and the whole request body was delivered.
    pub success: bool,
    /// What went wrong, with the start of its stderr.
    pub detail: Option<String>,
}

/// Why no response could be produced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CgiError {
    /// The process could not be started.
    #[error("cannot start git http-backend")]
    Spawn(#[source] std::io::Error),
    /// The process ended or misbehaved before sending its CGI headers. Its error output
    /// is part of the message because it usually says why, in git's words.
    #[error("git http-backend sent no response: {}; stderr: {stderr}", chain(.reason))]
    NoHeaders {
        /// What went wrong with the response head.
        reason: HeadError,
        /// The start of the process's error output.
        stderr: String,
    },
}

/// Why the CGI response head could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    /// The process did not send its headers within the request timeout.
    #[error("timed out")]
    TimedOut,
    /// Reading the process's output failed.
    #[error("reading CGI headers")]
    Read(#[source] std::io::Error),
    /// The output ended before the empty line that ends the headers.
    #[error("output ended before the CGI headers did")]
    Ended,
    /// The headers are longer than any git sends.
    #[error("CGI headers too long")]
    TooLong,
    /// A header line has no `:`.
    #[error("malformed CGI header line {0:?}")]
    MalformedLine(String),
    /// The `Status:` header holds no HTTP status code.
    #[error("malformed CGI status {0:?}")]
    MalformedStatus(String),
}

/// Why the request body could not be handed to the process.
#[derive(Debug, thiserror::Error)]
enum FeedError {
    /// The client's body failed mid-stream.
    #[error("reading the request body")]
    Read(#[source] Foreign<axum::Error>),
    /// The body is larger than git requests may be.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
}

const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_STDERR_BYTES: usize = 16 * 1024;

/// Starts `git http-backend` for `request` and returns once its CGI headers are read.
pub(crate) async fn run(request: CgiRequest) -> Result<CgiResponse, CgiError> {
    let mut command = Command::new(&request.git_binary);
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &request.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        // Neither the machine's nor a user's git configuration changes what is served;
        // repositories may be owned by another uid than the server's.
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("PATH_INFO", &request.path_info)
        .env(
            "PATH_TRANSLATED",
            request
                .project_root
                .join(request.path_info.trim_start_matches('/')),
        )
        .env("REQUEST_METHOD", &request.method)
        .env("QUERY_STRING", &request.query)
        .env("REMOTE_ADDR", &request.remote_addr)
        .stdin(if request.body.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let optional = [
        ("CONTENT_TYPE", &request.content_type),
        ("CONTENT_LENGTH", &request.content_length),
        ("HTTP_CONTENT_ENCODING", &request.content_encoding),
        ("GIT_PROTOCOL", &request.git_protocol),
        ("REMOTE_USER", &request.remote_user),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    let mut child = command.spawn().map_err(CgiError::Spawn)?;
    let feeder = match (child.stdin.take(), request.body) {
        (Some(stdin), Some(body)) => {
            Some(tokio::spawn(feed(stdin, body, request.max_request_bytes)))
        }
        _ => None,
    };
    let stderr = child
        .stderr
        .take()
        .map(|stderr| tokio::spawn(read_bounded(stderr)));
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));

    let head = tokio::time::timeout(request.timeout, read_head(&mut stdout)).await;
    let head = match head {
        Ok(Ok(head)) => head,
        failed => {
            let _ = child.kill().await;
            let stderr = match stderr {
                Some(task) => task.await.unwrap_or_default(),
                None => String::new(),
            };
            let reason = match failed {
                Err(_) => HeadError::TimedOut,
                Ok(Err(e)) => e,
                Ok(Ok(_)) => unreachable!(),
            };
            return Err(CgiError::NoHeaders { reason, stderr });
        }
    };
    let timeout = request.timeout;
    let finished = tokio::spawn(async move {
        let exit = tokio::time::timeout(timeout, child.wait()).await;
        let mut detail = match exit {
            Ok(Ok(status)) if status.success() => None,
            Ok(Ok(status)) => Some(format!("git http-backend exited with {status}")),
            Ok(Err(e)) => Some(format!("waiting for git http-backend: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                Some("git http-backend timed out".to_owned())
            }
        };
        if let Some(feeder) = feeder {
            match feeder.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let e = chain(&e);
                    detail = Some(detail.map_or(e.clone(), |d| format!("{e}; {d}")));
                }
                Err(e) => detail = Some(format!("request body task failed: {e}")),
            }
        }
        if let Some(stderr) = stderr {
            let stderr = stderr.await.unwrap_or_default();
            if let Some(detail) = detail.as_mut().filter(|_| !stderr.is_empty()) {
                detail.push_str("; stderr: ");
                detail.push_str(stderr.trim());
            }
        }
        CgiExit {
            success: detail.is_none(),
            detail,
        }
    });
    Ok(CgiResponse {
        status: head.0,
        headers: head.1,
        body: axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(stdout)),
        finished,
    })
}

/// Copies the request body into the process, up to `max` bytes.
async fn feed(mut stdin: ChildStdin, mut body: BodyStream, max: u64) -> Result<(), FeedError> {
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| FeedError::Read(Foreign(e)))?;
        total += chunk.len() as u64;
        if total > max {
            return Err(FeedError::TooLarge(max));
        }
        if stdin.write_all(&chunk).await.is_err() {
            // The process stopped reading (it failed or finished early): its exit says why.
            return Ok(());
        }
    }
    let _ = stdin.shutdown().await;
    Ok(())
}

/// Reads a stream to its end, keeping its first bytes.
async fn read_bounded(mut reader: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_STDERR_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Parses the CGI response head: `Status:` and other header lines up to an empty line.
async fn read_head(
    stdout: &mut BufReader<tokio::process::ChildStdout>,
) -> Result<(StatusCode, HeaderMap), HeadError> {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut read = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = stdout
            .read_until(b'\n', &mut line)
            .await
            .map_err(HeadError::Read)?;
        if n == 0 {
            return Err(HeadError::Ended);
        }
        read += n;
        if read > MAX_HEADER_BYTES {
            return Err(HeadError::TooLong);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| HeadError::MalformedLine(text.to_owned()))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or_default();
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .ok_or_else(|| HeadError::MalformedStatus(value.to_owned()))?;
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
}
