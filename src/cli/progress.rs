//! Whether a command draws progress, and the group its bars share. The bars themselves are drawn
//! by the run (`run/execute.rs`); this is the CLI's choice of whether and where.

use indicatif::MultiProgress;

/// Progress for a run: drawn unless turned off or `-q` (and, by indicatif, only on a terminal),
/// with one group so that datasets running together each get a line.
pub(crate) fn for_run(no_progress: bool, quiet: bool) -> (bool, Option<MultiProgress>) {
    let draw = !no_progress && !quiet;
    (draw, draw.then(MultiProgress::new))
}

/// Progress for a check (`validate`): drawn unless `-q`.
pub(crate) fn for_check(quiet: bool) -> bool {
    !quiet
}
