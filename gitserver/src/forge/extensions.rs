//! The fleetbench-only endpoints (`/api/fleetbench/...`): request log, deliveries, faults.
//!
//! Every answer of a fleetbench gitserver carries the `X-Fleetbench-Gitserver` header; an
//! answer without it comes from something else (a real Gitea answers these paths with its
//! own 404) and becomes [`ForgeError::NotFleetbench`], so a suite that needs the request log
//! or faults fails with a clear message instead of a confusing "not found".

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::ForgeClient;
use super::error::ForgeError;
use crate::faults::{Fault, RepoFault};
use crate::request_log::{RequestFilter, RequestLogEntry};
use crate::webhook::Delivery;

/// `GET /api/fleetbench/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Always `fleetbench-gitserver`.
    pub server: String,
    /// The server crate's version.
    pub version: String,
    /// The Gitea release whose API the server follows.
    pub gitea_api: String,
}

/// The fleetbench-only endpoints of one server.
#[derive(Debug, Clone)]
pub struct Extensions {
    client: ForgeClient,
}

impl Extensions {
    pub(crate) fn new(client: ForgeClient) -> Self {
        Self { client }
    }

    fn url(&self, segments: &[&str]) -> Result<url::Url, ForgeError> {
        self.client.url("api/fleetbench", segments, None)
    }

    /// What server this is; fails with [`ForgeError::NotFleetbench`] on a real Gitea.
    pub async fn info(&self) -> Result<ServerInfo, ForgeError> {
        self.client
            .json::<_, ()>(Method::GET, self.url(&["info"])?, None, true)
            .await
    }

    /// Whether the server offers fleetbench's extensions: `Some(info)` on a fleetbench
    /// gitserver with them, `None` on a real Gitea or a gitserver in plain-Gitea mode
    /// (whose answers carry no fleetbench header). Transport failures and other errors are
    /// returned, so "cannot tell" is never mistaken for "no extensions".
    pub async fn detect(&self) -> Result<Option<ServerInfo>, ForgeError> {
        match self.info().await {
            Ok(info) => Ok(Some(info)),
            Err(ForgeError::NotFleetbench { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Request-log entries matching `filter`, in arrival order.
    pub async fn requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<RequestLogEntry>, ForgeError> {
        let mut url = self.url(&["requests"])?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(repo) = &filter.repo {
                query.append_pair("repo", repo);
            }
            if let Some(since) = filter.since {
                query.append_pair("since", &format!("{since:.9}"));
            }
            if let Some(service) = filter.service {
                query.append_pair("service", service.as_str());
            }
            if let Some(after) = filter.after_seq {
                query.append_pair("after_seq", &after.to_string());
            }
            if let Some(limit) = filter.limit {
                query.append_pair("limit", &limit.to_string());
            }
        }
        self.client
            .json::<_, ()>(Method::GET, url, None, true)
            .await
    }

    /// Webhook deliveries, optionally of one repository (`owner/name`) and hook.
    pub async fn deliveries(
        &self,
        repo: Option<&str>,
        hook_id: Option<i64>,
    ) -> Result<Vec<Delivery>, ForgeError> {
        let mut url = self.url(&["deliveries"])?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(repo) = repo {
                query.append_pair("repo", repo);
            }
            if let Some(hook_id) = hook_id {
                query.append_pair("hook_id", &hook_id.to_string());
            }
        }
        self.client
            .json::<_, ()>(Method::GET, url, None, true)
            .await
    }

    /// Every fault in force.
    pub async fn faults(&self) -> Result<Vec<RepoFault>, ForgeError> {
        self.client
            .json::<_, ()>(Method::GET, self.url(&["faults"])?, None, true)
            .await
    }

    /// Sets the fault of `owner/repo` (404 if there is no such repository).
    pub async fn set_fault(
        &self,
        owner: &str,
        repo: &str,
        fault: Fault,
    ) -> Result<RepoFault, ForgeError> {
        self.client
            .json(
                Method::PUT,
                self.url(&["faults", owner, repo])?,
                Some(&fault),
                true,
            )
            .await
    }

    /// Clears the fault of `owner/repo`.
    pub async fn clear_fault(&self, owner: &str, repo: &str) -> Result<(), ForgeError> {
        self.client
            .send::<()>(
                Method::DELETE,
                self.url(&["faults", owner, repo])?,
                None,
                true,
            )
            .await
            .map(drop)
    }

    /// Clears every fault.
    pub async fn clear_all_faults(&self) -> Result<(), ForgeError> {
        self.client
            .send::<()>(Method::DELETE, self.url(&["faults"])?, None, true)
            .await
            .map(drop)
    }
}
