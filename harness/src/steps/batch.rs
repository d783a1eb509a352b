//! Many API writes at once: the setup steps create hundreds of objects (repositories,
//! GitRepos) and patch as many (targets, BundleDeployment status), and doing them one at a
//! time would make setup, not the controller, dominate a suite's duration. A bound keeps
//! the servers from being flooded, which would measure the flood instead.

use futures::StreamExt as _;

use super::StepError;
use crate::progress::Task;

/// Sends one create or patch per item, `concurrency` at a time, ticking `task` for each
/// that succeeds and stopping at the first error.
pub async fn create_or_patch_all<T, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    task: &Task,
    write: F,
) -> Result<(), StepError>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<(), StepError>>,
{
    let mut stream =
        futures::stream::iter(items.into_iter().map(write)).buffer_unordered(concurrency);
    while let Some(result) = stream.next().await {
        result?;
        task.inc(1);
    }
    Ok(())
}
