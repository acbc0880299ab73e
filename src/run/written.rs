//! What an execution attempt wrote, and where to: shared by the local execution and the
//! cluster's.

use std::sync::Arc;

use crate::batch::Tally;
use crate::personalize::ColumnPlan;
use crate::report::ClusterReport;
use crate::row_flow::RowFlow;
use crate::sink::csv_dialect;
use crate::sink::{PartInfo, Staging};
use crate::sources::bad_records::BadRecordCounts;
use crate::write::WriteSummary;

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

impl Written {
    /// What the write stage's `summary` says was written, with the run's figures.
    pub(super) fn new(
        plan: Arc<ColumnPlan>,
        summary: WriteSummary,
        tally: Tally,
        flow: RowFlow,
        bad_records: BadRecordCounts,
        cluster: Option<ClusterReport>,
    ) -> Self {
        // Every part repeats the header; validation counts one, as for a single file.
        let header = csv_dialect::header(plan.names()).len() as u64;
        let bytes = tally.row_bytes + header * summary.parts.len().max(1) as u64;
        Written {
            plan,
            bytes,
            parts: summary.parts,
            rejects_file: summary.rejects_file,
            tally,
            flow,
            bad_records,
            cluster,
        }
    }
}
