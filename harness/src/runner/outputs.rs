//! What users read of a run: results.json, junit.xml and report.html, rewritten after
//! every suite so that a crash or a Ctrl-C loses at most the suite that was running. A
//! file that cannot be written is logged and the run goes on: the suites still running
//! are worth more than one missing file.

use super::{RunState, now};
use crate::{junit, report};

/// Writes results.json, junit.xml and report.html; `finished` stamps the end.
pub(super) fn write(state: &RunState, finished: bool) {
    let mut collected = state.results.lock();
    let results = &mut collected.run;
    crate::results::mark_overlaps(&mut results.suites);
    results.duration_s = state.origin.elapsed().as_secs_f64();
    if finished {
        results.finished_at = Some(now());
    }
    results.update_verdict();
    let out = &state.options.out;
    if let Err(error) = results.write_to_dir(out) {
        tracing::error!(error = %crate::error_text(&error), "cannot write results");
        return;
    }
    let junit_path = out.join(junit::JUNIT_FILE);
    if let Err(error) = std::fs::write(&junit_path, junit::render(results)) {
        tracing::error!(error = %crate::error_text(&error), path = %junit_path.display(), "cannot write JUnit");
    }
    // The report renders owned runs (it usually reads them from files): the one copy of
    // the results a write makes.
    let html = report::render(
        &[report::LabelledRun {
            label: out.display().to_string(),
            results: results.clone(),
        }],
        None,
    );
    drop(collected);
    let report_path = out.join("report.html");
    if let Err(error) = std::fs::write(&report_path, html) {
        tracing::error!(error = %crate::error_text(&error), path = %report_path.display(), "cannot write the report");
    }
}
