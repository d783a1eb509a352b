//! Serves an API server until Ctrl-C: `cargo run -p fleetbench-apiserver --example serve --
//! [ADDR] [KUBECONFIG]`. (The `fleetbench apiserver` subcommand is the supported CLI.)

#[tokio::main]
async fn main() -> Result<(), apiserver::Error> {
    let mut args = std::env::args().skip(1);
    let listen = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| "127.0.0.1:0".parse().expect("valid address"));
    let kubeconfig = args.next().unwrap_or_else(|| "kubeconfig.yaml".into());
    let server =
        apiserver::ApiServer::start(apiserver::Config::default().with_listen(listen)).await?;
    server.write_kubeconfig(&kubeconfig)?;
    println!("serving at {}; kubeconfig in {kubeconfig}", server.url());
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
