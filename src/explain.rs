//! `pengine explain`: what a mapping file will do, without writing anything: the dataset, each
//! output column with its source type, conversion and Avro type, and DataFusion's plans.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::dataset_plan;
use crate::engine::EngineOptions;
use crate::error::Result;
use crate::mapping::MappingFile;
use crate::store::StoreRegistry;

pub async fn explain(mapping: &MappingFile, options: &EngineOptions) -> Result<String> {
    let dataset_plan::Planned {
        frame,
        columns: plan,
        ..
    } = dataset_plan::plan(mapping, options, Arc::new(StoreRegistry::new())).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} → {} dataset",
        mapping.display_name(),
        mapping.dataset
    );
    let _ = writeln!(out, "\nOutput columns (CSV header order):");
    for column in &plan.columns {
        let role = if column.is_reserved() {
            "reserved"
        } else {
            "metadata"
        };
        let mut flags = Vec::new();
        if column.categorical {
            flags.push("categorical");
        }
        if column.textual {
            flags.push("textual");
        }
        if column.nullable {
            flags.push("nullable");
        }
        let _ = writeln!(
            out,
            "  {:<24} ← {:<20} {:<9} {:<28} {:?} → {} {}",
            column.name,
            column.source_name,
            role,
            column.source_type,
            column.conversion,
            column.avro_type.name(),
            flags.join(" ")
        );
    }
    let explained = frame.explain(false, false)?.collect().await?;
    let _ = writeln!(
        out,
        "\nDataFusion plan:\n{}",
        pretty_format_batches(&explained)?
    );
    Ok(out)
}
