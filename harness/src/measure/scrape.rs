//! Reading `apiserver_request_total` from every API server replica.
//!
//! Write counts are the difference between two scrapes of the API server's counters, and
//! a difference only means something between two readings of the same process. A cluster
//! with several API servers behind a load balancer answers each `/metrics` from whichever
//! replica the balancer picked, so the scraper asks the `kubernetes` Endpoints (which
//! every Kubernetes API server maintains: one address per replica) for the replicas, and
//! reads each one directly, keeping its counters apart. With one replica, or none listed
//! (fleetbench's own API server), it reads through the cluster's URL like any other call.
//! When the replicas cannot be reached one by one (a managed control plane's private
//! addresses), it reads through the balancer and says so: every count it feeds is then
//! marked damaged instead of passing on numbers that may mix replicas.

use std::time::Duration;

use k8s_openapi::api::core::v1::Endpoints;
use kube::{Api, Client};

use super::metrics::{MetricsError, RequestTotals, ServerTotals};

/// How long one replica may take to answer `/metrics`.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long discovery may take to read the `kubernetes` Endpoints.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Reads the request counters of every API server replica.
pub struct RequestScraper {
    /// Where `/metrics` is read from.
    targets: Vec<Target>,
    /// Why the counts may be wrong whatever the scrapes say (replicas unreachable one by
    /// one), for every measurement that uses them.
    problem: Option<String>,
}

/// One place `/metrics` is read from.
struct Target {
    /// The replica's address, or `""` for the cluster's own URL.
    address: String,
    /// A client for it.
    client: Client,
}

impl RequestScraper {
    /// A scraper that reads through `client` only: one API server, or one known to be
    /// the only one.
    pub fn through(client: Client) -> RequestScraper {
        RequestScraper {
            targets: vec![Target {
                address: String::new(),
                client,
            }],
            problem: None,
        }
    }

    /// Discovers the replicas behind `config`'s cluster and checks that each answers
    /// `/metrics` directly; falls back to [`RequestScraper::through`] (with a recorded
    /// problem when there are several replicas) when they cannot be reached.
    pub async fn discover(client: Client, config: &kube::Config) -> RequestScraper {
        let replicas = match tokio::time::timeout(DISCOVERY_TIMEOUT, replica_addresses(&client))
            .await
        {
            Ok(Ok(replicas)) => replicas,
            // Not listing Endpoints (fleetbench's API server has no `kubernetes` Service;
            // a restricted user may not read it) means one URL: read through it.
            Ok(Err(error)) => {
                tracing::debug!(error = %crate::error_text(&error), "no API server replicas listed; scraping the cluster URL");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!(
                    "the kubernetes Endpoints did not answer within {DISCOVERY_TIMEOUT:?}; scraping the cluster URL as one API server"
                );
                Vec::new()
            }
        };
        if replicas.len() < 2 {
            return RequestScraper::through(client);
        }
        let mut targets = Vec::new();
        let mut failures = Vec::new();
        for address in &replicas {
            let direct = match replica_client(config, address) {
                Ok(direct) => direct,
                Err(error) => {
                    failures.push(format!("{address}: {}", crate::error_text(&error)));
                    continue;
                }
            };
            match scrape_replica(&direct).await {
                Ok(_) => targets.push(Target {
                    address: address.clone(),
                    client: direct,
                }),
                Err(error) => failures.push(format!("{address}: {}", crate::error_text(&error))),
            }
        }
        if failures.is_empty() {
            tracing::info!(replicas = ?replicas, "counting API requests on each API server replica");
            return RequestScraper {
                targets,
                problem: None,
            };
        }
        let mut scraper = RequestScraper::through(client);
        scraper.problem = Some(format!(
            "the API server has {} replicas ({}) that could not each be scraped directly ({}); its request counters are read through the cluster URL, where successive scrapes may reach different replicas, so write counts may be wrong",
            replicas.len(),
            replicas.join(", "),
            failures.join("; ")
        ));
        scraper
    }

    /// Why counts from this scraper may be wrong whatever a scrape returns, if they may.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// The addresses read, `""` standing for the cluster URL.
    pub fn addresses(&self) -> Vec<&str> {
        self.targets.iter().map(|t| t.address.as_str()).collect()
    }

    /// Reads every target's counters; fails if any cannot be read (a partial reading
    /// would count a missing replica's writes as none).
    pub async fn scrape(&self) -> Result<RequestTotals, MetricsError> {
        let readings = futures::future::join_all(self.targets.iter().map(|t| async {
            if t.address.is_empty() {
                scrape_one(&t.client).await
            } else {
                scrape_replica(&t.client).await
            }
        }))
        .await;
        let mut totals = RequestTotals::default();
        for (target, reading) in self.targets.iter().zip(readings) {
            // Name the replica; a replica's page without counters is not an error
            // (`scrape_replica`), so only failed requests need it.
            let reading = reading.map_err(|error| {
                if target.address.is_empty() {
                    error
                } else {
                    error.at_replica(&target.address)
                }
            })?;
            totals.servers.insert(target.address.clone(), reading);
        }
        Ok(totals)
    }
}

/// `ip:port` of every replica the `kubernetes` Endpoints in `default` lists, sorted.
async fn replica_addresses(client: &Client) -> Result<Vec<String>, kube::Error> {
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    Ok(endpoints
        .get_opt("kubernetes")
        .await?
        .map(|endpoints| addresses_of(&endpoints))
        .unwrap_or_default())
}

/// Every `address:port` pair of `endpoints` (an Endpoints subset means each of its
/// addresses serves each of its ports), sorted and without repeats.
pub fn addresses_of(endpoints: &Endpoints) -> Vec<String> {
    let mut addresses: Vec<String> = endpoints
        .subsets
        .iter()
        .flatten()
        .flat_map(|subset| {
            let ports: Vec<i32> = subset
                .ports
                .iter()
                .flatten()
                .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
                .map(|p| p.port)
                .collect();
            subset
                .addresses
                .iter()
                .flatten()
                .flat_map(move |address| {
                    let host = if address.ip.contains(':') {
                        format!("[{}]", address.ip)
                    } else {
                        address.ip.clone()
                    };
                    ports
                        .clone()
                        .into_iter()
                        .map(move |port| format!("{host}:{port}"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// A client for one replica: the cluster's credentials and CA, the replica's address,
/// and TLS checked against the cluster URL's host name, which every replica behind the
/// balancer presents in its certificate.
fn replica_client(config: &kube::Config, address: &str) -> Result<Client, ReplicaError> {
    Ok(Client::try_from(replica_config(config, address)?)?)
}

/// Why a replica cannot be reached directly.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Its address does not make a URL.
    #[error("bad replica address")]
    Address(#[from] http::uri::InvalidUri),
    /// kube-rs cannot build a client for it.
    #[error(transparent)]
    Client(fleet_api::error::Foreign<kube::Error>),
}

impl From<kube::Error> for ReplicaError {
    fn from(error: kube::Error) -> Self {
        ReplicaError::Client(error.into())
    }
}

/// The configuration [`replica_client`] connects with.
fn replica_config(config: &kube::Config, address: &str) -> Result<kube::Config, ReplicaError> {
    let mut direct = config.clone();
    let scheme = config.cluster_url.scheme_str().unwrap_or("https");
    direct.cluster_url = format!("{scheme}://{address}").parse()?;
    if scheme == "https" && direct.tls_server_name.is_none() {
        direct.tls_server_name = config
            .cluster_url
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
    }
    Ok(direct)
}

/// [`scrape_one`] for a replica the `kubernetes` Endpoints listed: it is an API server by
/// construction, so a page without request counters is one that has served no request yet
/// (metrics encoders leave out families without series), not a stranger.
async fn scrape_replica(client: &Client) -> Result<ServerTotals, MetricsError> {
    match scrape_one(client).await {
        Err(MetricsError::NoRequestTotals) => Ok(ServerTotals::default()),
        other => other,
    }
}

/// `GET /metrics` through `client`, bounded.
async fn scrape_one(client: &Client) -> Result<ServerTotals, MetricsError> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a static request builds");
    let text = tokio::time::timeout(SCRAPE_TIMEOUT, client.request_text(request))
        .await
        .map_err(|_| MetricsError::NoAnswer {
            address: String::new(),
            after: SCRAPE_TIMEOUT,
        })?
        .map_err(|source| MetricsError::Request {
            address: String::new(),
            source: source.into(),
        })?;
    ServerTotals::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_serves_every_port_of_its_subset() {
        let endpoints: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [
                {"addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}],
                 "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
                {"addresses": [{"ip": "fd00::1"}, {"ip": "10.0.0.1"}],
                 "ports": [{"port": 6443}, {"name": "dns", "port": 53, "protocol": "UDP"}]}
            ]
        }))
        .unwrap();
        assert_eq!(
            addresses_of(&endpoints),
            ["10.0.0.1:6443", "10.0.0.2:6443", "[fd00::1]:6443"]
        );
        assert!(addresses_of(&Endpoints::default()).is_empty());
    }

    #[test]
    fn a_replica_is_reached_by_address_and_checked_by_the_cluster_name() {
        let config = kube::Config::new("https://api.example.com:6443".parse().unwrap());
        let direct = replica_config(&config, "10.0.0.1:6443").unwrap();
        assert_eq!(direct.cluster_url.to_string(), "https://10.0.0.1:6443/");
        assert_eq!(direct.tls_server_name.as_deref(), Some("api.example.com"));
        let v6 = replica_config(&config, "[fd00::1]:6443").unwrap();
        assert_eq!(v6.cluster_url.host(), Some("[fd00::1]"));
        let plain = kube::Config::new("http://127.0.0.1:8080".parse().unwrap());
        let direct = replica_config(&plain, "127.0.0.1:9090").unwrap();
        assert_eq!(direct.cluster_url.to_string(), "http://127.0.0.1:9090/");
        assert_eq!(direct.tls_server_name, None, "no TLS, no server name");
        assert!(replica_config(&config, "not an address").is_err());
    }

    /// Two fleetbench API servers standing in for two replicas of one cluster, the first
    /// listing `addresses` as the `kubernetes` Endpoints.
    async fn replicas(
        extra: &[String],
    ) -> (
        apiserver::RunningApiServer,
        apiserver::RunningApiServer,
        Client,
        kube::Config,
    ) {
        let a = apiserver::ApiServer::start(apiserver::Config::default())
            .await
            .unwrap();
        let b = apiserver::ApiServer::start(apiserver::Config::default())
            .await
            .unwrap();
        let config = kube::Config::new(a.url().parse().unwrap());
        let client = Client::try_from(config.clone()).unwrap();
        let mut subsets = vec![
            serde_json::json!({"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": a.addr().port()}]}),
            serde_json::json!({"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": b.addr().port()}]}),
        ];
        for address in extra {
            let (ip, port) = address.rsplit_once(':').unwrap();
            subsets.push(serde_json::json!({"addresses": [{"ip": ip}], "ports": [{"port": port.parse::<i32>().unwrap()}]}));
        }
        let endpoints: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": subsets,
        }))
        .unwrap();
        Api::<Endpoints>::namespaced(client.clone(), "default")
            .create(&Default::default(), &endpoints)
            .await
            .unwrap();
        (a, b, client, config)
    }

    async fn create_configmaps(url: &str, count: usize) {
        use k8s_openapi::api::core::v1::ConfigMap;
        let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..count {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let map: ConfigMap = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("counted-{n}")}
            }))
            .unwrap();
            api.create(&Default::default(), &map).await.unwrap();
        }
    }

    #[tokio::test]
    async fn writes_on_every_replica_are_counted_each_against_itself() {
        let (a, b, client, config) = replicas(&[]).await;
        // Replica b has served nothing yet: it is still a replica to count.
        let scraper = RequestScraper::discover(client, &config).await;
        assert_eq!(scraper.problem(), None);
        assert_eq!(scraper.addresses().len(), 2, "{:?}", scraper.addresses());
        // Replica b then serves more over its life than a: differences across replicas
        // would be noise.
        create_configmaps(&b.url(), 5).await;
        let before = scraper.scrape().await.unwrap();
        create_configmaps(&a.url(), 3).await;
        create_configmaps(&b.url(), 4).await;
        let after = scraper.scrape().await.unwrap();
        let created: u64 = after
            .since(&before)
            .iter()
            .filter(|r| r.verb == "CREATE" && r.resource == "configmaps")
            .map(|r| r.count)
            .sum();
        assert_eq!(created, 7);
        assert!(after.restarts_since(&before).is_empty());
    }

    #[tokio::test]
    async fn unreachable_replicas_fall_back_to_the_cluster_url_and_say_so() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let (_a, _b, client, config) = replicas(std::slice::from_ref(&closed)).await;
        let scraper = RequestScraper::discover(client, &config).await;
        assert_eq!(scraper.addresses(), [""]);
        let problem = scraper.problem().expect("the fallback is recorded");
        assert!(problem.contains("3 replicas"), "{problem}");
        assert!(problem.contains(&closed), "{problem}");
        assert!(scraper.scrape().await.is_ok());
    }

    #[tokio::test]
    async fn a_single_server_without_endpoints_is_read_through_its_url() {
        crate::init_crypto();
        let a = apiserver::ApiServer::start(apiserver::Config::default())
            .await
            .unwrap();
        let config = kube::Config::new(a.url().parse().unwrap());
        let client = Client::try_from(config.clone()).unwrap();
        let scraper = RequestScraper::discover(client, &config).await;
        assert_eq!(scraper.addresses(), [""]);
        assert_eq!(scraper.problem(), None);
    }
}
