//! What an execution attempt wrote, and where to: shared by the local execution and the
//! cluster's.

use std::sync::Arc;

use crate::batch::Tally;
use crate::personalize::ColumnPlan;
use crate::report::ClusterReport;
use crate::row_flow::RowFlow;
use crate::sink::{PartInfo, Staging};
use crate::sources::bad_records::BadRecordCounts;

/// What one execution attempt produced in the staging area.
pub(super) struct Written {
    pub(super) plan: Arc<ColumnPlan>,
    pub(super) parts: Vec<PartInfo>,
    /// Whether a rejects file was staged.
    pub(super) rejects_file: bool,
    /// Source records that could not be read (`--on-bad-records skip`), staged as they came.
    pub(super) bad_records: BadRecordCounts,
    /// CSV bytes produced, headers included (written, or counted when validating).
    pub(super) bytes: u64,
    pub(super) tally: Tally,
    /// The rows through the executed plan, measured.
    pub(super) flow: RowFlow,
    /// The cluster that ran it (`--cluster`).
    pub(super) cluster: Option<ClusterReport>,
}

/// Where a pass writes: a run's staging area, or nowhere (validation only counts).
#[derive(Clone, Copy)]
pub(super) enum Sink<'a> {
    Stage(&'a Staging),
    Discard,
}
