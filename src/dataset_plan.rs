//! A mapping file planned as a Personalize dataset: the engine's plan of its SQL, and the
//! dataset's output columns made from the query's schema and checked against the service's Avro
//! rules (nothing Personalize would reject gets past this point). The engine knows SQL, the
//! personalize module the service; this is where the two meet.

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;

use crate::engine::{self, EngineOptions};
use crate::error::Result;
use crate::mapping::MappingFile;
use crate::personalize::{ColumnPlan, avro};
use crate::sources::bad_records::BadRecordLog;
use crate::store::StoreRegistry;

/// A mapping file, planned: its session, its final query, and the dataset's output columns.
pub struct Planned {
    pub ctx: SessionContext,
    pub frame: DataFrame,
    pub columns: ColumnPlan,
    /// Where the sources' readers note the records they could not read.
    pub bad_records: Arc<BadRecordLog>,
}

/// Plans a mapping file and its dataset's columns, without reading data (source schemas are
/// inferred, though).
pub async fn plan(
    mapping: &MappingFile,
    options: &EngineOptions,
    stores: Arc<StoreRegistry>,
) -> Result<Planned> {
    let planned = engine::plan(mapping, options, stores, |frame| {
        let columns = ColumnPlan::new(
            frame.schema().as_arrow(),
            mapping.dataset,
            &mapping.directives.hints(),
        )?;
        avro::schema_text(&columns)?;
        Ok(columns)
    })
    .await?;
    Ok(Planned {
        ctx: planned.ctx,
        frame: planned.frame,
        columns: planned.checked,
        bad_records: planned.bad_records,
    })
}
