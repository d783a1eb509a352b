//! [`ForgeClient`]: typed calls for the Gitea REST subset.

use std::time::Duration;

use fleet_api::error::Foreign;
use http::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ForgeError;
use super::extensions::Extensions;
use super::types::{
    AccessToken, Branch, ChangeFilesOptions, ContentsResponse, CreateAccessTokenOption,
    CreateFileOptions, CreateHookOption, CreateOrgOption, CreateRepoOption, FileResponse,
    FilesResponse, Hook, Organization, Repository, SearchResults, ServerVersion, User,
};
use crate::server::SERVER_HEADER;

/// How the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anonymous.
    None,
    /// `Authorization: token X` (Gitea's access-token form).
    Token(String),
    /// HTTP basic auth (needed to create tokens on Gitea).
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

/// A Gitea API client. Clones share one connection pool.
#[derive(Debug, Clone)]
pub struct ForgeClient {
    http: reqwest::Client,
    base: url::Url,
    auth: Auth,
}

/// The most items Gitea returns in one page.
const PAGE_SIZE: usize = 50;
/// A bound on pages walked when listing (500,000 items).
const MAX_PAGES: usize = 10_000;

impl ForgeClient {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:3000`), with its own
    /// connection pool and a 60 s per-request timeout.
    pub fn new(base_url: &str, auth: Auth) -> Result<Self, ForgeError> {
        crate::tls::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|source| ForgeError::Transport {
                url: base_url.to_owned(),
                source: Foreign(source),
            })?;
        Self::with_http_client(base_url, auth, http)
    }

    /// A client using `http` (to share a pool or set TLS roots, e.g. Gitea's test CA).
    pub fn with_http_client(
        base_url: &str,
        auth: Auth,
        http: reqwest::Client,
    ) -> Result<Self, ForgeError> {
        let mut base =
            url::Url::parse(base_url).map_err(|_| ForgeError::InvalidUrl(base_url.to_owned()))?;
        if base.cannot_be_a_base() {
            return Err(ForgeError::InvalidUrl(base_url.to_owned()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self { http, base, auth })
    }

    /// The same server with other credentials (sharing the connection pool).
    pub fn with_auth(&self, auth: Auth) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            auth,
        }
    }

    /// The server's base URL (with a trailing `/`).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The clone URL of `owner/name` (`{base}{owner}/{name}.git`).
    pub fn clone_url(&self, owner: &str, name: &str) -> String {
        format!("{}{owner}/{name}.git", self.base)
    }

    /// The fleetbench-only endpoints of this server.
    pub fn extensions(&self) -> Extensions {
        Extensions::new(self.clone())
    }

    /// `{base}{prefix}/{segments...}/{tail}`: each segment percent-encoded as one path
    /// segment (a `/` in a name stays data), then `tail` (a file path or branch name) split
    /// on `/`. `.` and `..` segments are refused rather than sent, since URL normalisation
    /// would turn them into a different path.
    pub(crate) fn url(
        &self,
        prefix: &str,
        segments: &[&str],
        tail: Option<&str>,
    ) -> Result<url::Url, ForgeError> {
        let mut url = self
            .base
            .join(prefix)
            .map_err(|_| ForgeError::InvalidUrl(format!("{}{prefix}", self.base)))?;
        let tail_parts = tail.into_iter().flat_map(|t| t.split('/'));
        let parts: Vec<&str> = segments.iter().copied().chain(tail_parts).collect();
        if let Some(bad) = parts.iter().find(|p| matches!(**p, "." | "..")) {
            return Err(ForgeError::InvalidUrl(format!("{url}/…/{bad}")));
        }
        url.path_segments_mut()
            .map_err(|()| ForgeError::InvalidUrl(self.base.to_string()))?
            .pop_if_empty()
            .extend(parts);
        Ok(url)
    }

    fn api(&self, segments: &[&str]) -> Result<url::Url, ForgeError> {
        self.url("api/v1", segments, None)
    }

    fn api_path(&self, segments: &[&str], tail: &str) -> Result<url::Url, ForgeError> {
        self.url("api/v1", segments, Some(tail))
    }

    /// Sends a request; returns the answer if it was a success. With `fleetbench_only`, an
    /// answer without the fleetbench server header is [`ForgeError::NotFleetbench`].
    pub(crate) async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
        fleetbench_only: bool,
    ) -> Result<reqwest::Response, ForgeError> {
        let mut request = self.http.request(method, url.clone());
        request = match &self.auth {
            Auth::None => request,
            Auth::Token(token) => {
                request.header(http::header::AUTHORIZATION, format!("token {token}"))
            }
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ForgeError::Transport {
                url: url.to_string(),
                source: Foreign(source),
            })?;
        if fleetbench_only && !response.headers().contains_key(SERVER_HEADER) {
            return Err(ForgeError::NotFleetbench {
                url: url.to_string(),
            });
        }
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<super::types::ApiErrorBody>(&text)
            .map(|body| body.message)
            .unwrap_or_else(|_| text.chars().take(500).collect());
        Err(ForgeError::from_status(status.as_u16(), message))
    }

    pub(crate) async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
        fleetbench_only: bool,
    ) -> Result<T, ForgeError> {
        let response = self
            .send(method, url.clone(), body, fleetbench_only)
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ForgeError::Transport {
                url: url.to_string(),
                source: Foreign(source),
            })?;
        serde_json::from_slice(&bytes).map_err(|source| ForgeError::Decode {
            url: url.to_string(),
            source,
        })
    }

    async fn get<T: DeserializeOwned>(&self, url: url::Url) -> Result<T, ForgeError> {
        self.json::<T, ()>(Method::GET, url, None, false).await
    }

    async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        url: url::Url,
        body: &B,
    ) -> Result<T, ForgeError> {
        self.json(Method::POST, url, Some(body), false).await
    }

    async fn delete(&self, url: url::Url) -> Result<(), ForgeError> {
        self.send::<()>(Method::DELETE, url, None, false)
            .await
            .map(drop)
    }

    /// Walks every page of a Gitea list endpoint.
    async fn all_pages<T: DeserializeOwned>(&self, url: url::Url) -> Result<Vec<T>, ForgeError> {
        let mut items = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut page_url = url.clone();
            page_url
                .query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("limit", &PAGE_SIZE.to_string());
            let response = self
                .send::<()>(Method::GET, page_url.clone(), None, false)
                .await?;
            let total: Option<usize> = response
                .headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let bytes = response
                .bytes()
                .await
                .map_err(|source| ForgeError::Transport {
                    url: page_url.to_string(),
                    source: Foreign(source),
                })?;
            let batch: Vec<T> =
                serde_json::from_slice(&bytes).map_err(|source| ForgeError::Decode {
                    url: page_url.to_string(),
                    source,
                })?;
            let received = batch.len();
            items.extend(batch);
            let done = match total {
                Some(total) => items.len() >= total || received == 0,
                None => received < PAGE_SIZE,
            };
            if done {
                break;
            }
        }
        Ok(items)
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<ServerVersion, ForgeError> {
        self.get(self.api(&["version"])?).await
    }

    /// `GET /user`: who the credentials belong to.
    pub async fn current_user(&self) -> Result<User, ForgeError> {
        self.get(self.api(&["user"])?).await
    }

    /// `POST /user/repos`: a repository of the authenticated user.
    pub async fn create_repo(&self, option: &CreateRepoOption) -> Result<Repository, ForgeError> {
        self.post(self.api(&["user", "repos"])?, option).await
    }

    /// `POST /orgs/{org}/repos`: a repository of an organisation.
    pub async fn create_org_repo(
        &self,
        org: &str,
        option: &CreateRepoOption,
    ) -> Result<Repository, ForgeError> {
        self.post(self.api(&["orgs", org, "repos"])?, option).await
    }

    /// `POST /orgs`.
    pub async fn create_org(&self, option: &CreateOrgOption) -> Result<Organization, ForgeError> {
        self.post(self.api(&["orgs"])?, option).await
    }

    /// `GET /orgs/{org}`.
    pub async fn get_org(&self, org: &str) -> Result<Organization, ForgeError> {
        self.get(self.api(&["orgs", org])?).await
    }

    /// The organisation `org`, created if it does not exist yet.
    pub async fn ensure_org(&self, org: &str) -> Result<Organization, ForgeError> {
        match self.get_org(org).await {
            Err(e) if e.is_not_found() => {}
            found => return found,
        }
        let option = CreateOrgOption {
            username: org.to_owned(),
            ..CreateOrgOption::default()
        };
        match self.create_org(&option).await {
            // Created concurrently by someone else, or an invalid name.
            Err(invalid @ ForgeError::Unprocessable { .. }) => match self.get_org(org).await {
                Err(e) if e.is_not_found() => Err(invalid),
                found => found,
            },
            created => created,
        }
    }

    /// `GET /repos/{owner}/{repo}`.
    pub async fn get_repo(&self, owner: &str, repo: &str) -> Result<Repository, ForgeError> {
        self.get(self.api(&["repos", owner, repo])?).await
    }

    /// `DELETE /repos/{owner}/{repo}`.
    pub async fn delete_repo(&self, owner: &str, repo: &str) -> Result<(), ForgeError> {
        self.delete(self.api(&["repos", owner, repo])?).await
    }

    /// `GET /user/repos`, every page.
    pub async fn list_my_repos(&self) -> Result<Vec<Repository>, ForgeError> {
        self.all_pages(self.api(&["user", "repos"])?).await
    }

    /// `GET /orgs/{org}/repos`, every page.
    pub async fn list_org_repos(&self, org: &str) -> Result<Vec<Repository>, ForgeError> {
        self.all_pages(self.api(&["orgs", org, "repos"])?).await
    }

    /// `GET /repos/search?q=...`, first page (at most 50).
    pub async fn search_repos(&self, keyword: &str) -> Result<Vec<Repository>, ForgeError> {
        let mut url = self.api(&["repos", "search"])?;
        url.query_pairs_mut()
            .append_pair("q", keyword)
            .append_pair("limit", &PAGE_SIZE.to_string());
        let results: SearchResults = self.get(url).await?;
        Ok(results.data)
    }

    /// `POST /repos/{owner}/{repo}/hooks`.
    pub async fn create_hook(
        &self,
        owner: &str,
        repo: &str,
        option: &CreateHookOption,
    ) -> Result<Hook, ForgeError> {
        self.post(self.api(&["repos", owner, repo, "hooks"])?, option)
            .await
    }

    /// `GET /repos/{owner}/{repo}/hooks`.
    pub async fn list_hooks(&self, owner: &str, repo: &str) -> Result<Vec<Hook>, ForgeError> {
        self.get(self.api(&["repos", owner, repo, "hooks"])?).await
    }

    /// `DELETE /repos/{owner}/{repo}/hooks/{id}`.
    pub async fn delete_hook(&self, owner: &str, repo: &str, id: i64) -> Result<(), ForgeError> {
        self.delete(self.api(&["repos", owner, repo, "hooks", &id.to_string()])?)
            .await
    }

    /// `POST /repos/{owner}/{repo}/contents`: one commit creating, updating and deleting files.
    pub async fn change_files(
        &self,
        owner: &str,
        repo: &str,
        option: &ChangeFilesOptions,
    ) -> Result<FilesResponse, ForgeError> {
        self.post(self.api(&["repos", owner, repo, "contents"])?, option)
            .await
    }

    /// `POST /repos/{owner}/{repo}/contents/{path}`: one commit creating one file.
    pub async fn create_file(
        &self,
        owner: &str,
        repo: &str,
        path: &str,
        option: &CreateFileOptions,
    ) -> Result<FileResponse, ForgeError> {
        self.post(
            self.api_path(&["repos", owner, repo, "contents"], path)?,
            option,
        )
        .await
    }

    /// `GET /repos/{owner}/{repo}/contents/{path}?ref=...`: a file with its content.
    pub async fn get_file(
        &self,
        owner: &str,
        repo: &str,
        path: &str,
        reference: Option<&str>,
    ) -> Result<ContentsResponse, ForgeError> {
        let mut url = self.api_path(&["repos", owner, repo, "contents"], path)?;
        if let Some(reference) = reference {
            url.query_pairs_mut().append_pair("ref", reference);
        }
        self.get(url).await
    }

    /// `GET /repos/{owner}/{repo}/branches/{branch}`.
    pub async fn branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
    ) -> Result<Branch, ForgeError> {
        self.get(self.api(&["repos", owner, repo, "branches", branch])?)
            .await
    }

    /// The head commit id of `branch`.
    pub async fn branch_head(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
    ) -> Result<String, ForgeError> {
        let branch = self.branch(owner, repo, branch).await?;
        Ok(branch.commit.map(|c| c.id).unwrap_or_default())
    }

    /// `POST /users/{username}/tokens` (Gitea requires basic auth with a password).
    pub async fn create_token(
        &self,
        username: &str,
        option: &CreateAccessTokenOption,
    ) -> Result<AccessToken, ForgeError> {
        self.post(self.api(&["users", username, "tokens"])?, option)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_segments_and_keep_path_slashes() {
        let client = ForgeClient::new("http://127.0.0.1:3000/gitea", Auth::None).unwrap();
        let url = client
            .api_path(&["repos", "o", "r", "contents"], "dir/a b.yaml")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:3000/gitea/api/v1/repos/o/r/contents/dir/a%20b.yaml"
        );
        let url = client.api(&["orgs", "a/b"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:3000/gitea/api/v1/orgs/a%2Fb"
        );
        assert!(client.api(&["orgs", ".."]).is_err());
        assert!(
            client
                .api_path(&["repos", "o", "r", "contents"], "a/../b")
                .is_err()
        );
        assert_eq!(
            client.clone_url("o", "r"),
            "http://127.0.0.1:3000/gitea/o/r.git"
        );
        assert!(ForgeClient::new("not a url", Auth::None).is_err());
    }
}
