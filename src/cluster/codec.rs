//! [`PengineCodec`]: how pengine's plan nodes travel between the client, the scheduler and the
//! executors of a Ballista cluster.
//!
//! A stock Ballista codec knows DataFusion's nodes and Ballista's own. pengine's plans also hold
//! its scans (JSON and CSV read by its own readers), its DISTINCT, its fast timestamp cast and its
//! write stage; this codec encodes those and hands every other node to Ballista's codec. Each
//! message starts with one byte saying whose it is.

use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::datasource::physical_plan::{FileScanConfig, FileSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::from_proto::parse_protobuf_file_scan_config;
use datafusion_proto::physical_plan::to_proto::serialize_file_scan_config;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf::FileScanExecConf;
use object_store::path::Path;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::batch::{BatchOptions, InvalidPolicy};
use crate::distinct::DistinctExec;
use crate::iso_timestamps::IsoTimestampCast;
use crate::personalize::{ColumnHints, ColumnPlan, DatasetType};
use crate::sink::Destination;
use crate::sources::bad_records::{BadRecordLog, BadRecordPolicy};
use crate::sources::bad_records_out::{BadRecordsOut, BadRecordsTo};
use crate::sources::rebuild::format_from;
use crate::sources::scan::ExportSource;
use crate::sources::scan_spec::FormatSpec;
use crate::store::StoreRegistry;
use crate::write::{WriteExec, WriteTarget};

/// First byte of a message Ballista's codec wrote.
const BALLISTA: u8 = 0;
/// First byte of a message this codec wrote: a JSON [`Node`] (its length first), then the bytes
/// the node carries.
const PENGINE: u8 = 1;

/// Encodes pengine's nodes, and Ballista's through Ballista's codec. Executors decode output
/// locations with their own store registry (credentials from their own environment).
#[derive(Debug)]
pub struct PengineCodec {
    ballista: BallistaPhysicalExtensionCodec,
    stores: Arc<StoreRegistry>,
    /// Given to the scans it encodes: where they write the bad records they set aside.
    bad_records_to: Option<BadRecordsTo>,
}

impl PengineCodec {
    pub fn new(stores: Arc<StoreRegistry>) -> Self {
        Self {
            ballista: BallistaPhysicalExtensionCodec::default(),
            stores,
            bad_records_to: None,
        }
    }

    /// The codec of a job whose scans skip bad records, writing them under `to` (a folder of the
    /// run's staging area, which the client gathers from). A scan decoded with it keeps it, so
    /// the scheduler sends it on to the executors.
    pub fn with_bad_records_to(mut self, to: BadRecordsTo) -> Self {
        self.bad_records_to = Some(to);
        self
    }
}

/// A pengine node, as data.
#[derive(Debug, Serialize, Deserialize)]
enum Node {
    /// A scan by one of pengine's readers; the file scan itself follows as DataFusion's
    /// `FileScanExecConf`.
    Scan {
        format: FormatSpec,
        /// Set when bad records are skipped: the scan writes them there itself.
        #[serde(default)]
        bad_records_to: Option<BadRecordsTo>,
    },
    /// DISTINCT over its input, its output columns named `names`.
    Distinct { names: Vec<String> },
    /// The write stage, one set of files per task.
    Write {
        dataset: String,
        hints: ColumnHints,
        /// The output columns the client planned, checked against the executor's own plan.
        columns: Vec<String>,
        skip_invalid: bool,
        insights: bool,
        target: Target,
    },
}

/// Where a cluster's write stage puts its files.
#[derive(Debug, Serialize, Deserialize)]
enum Target {
    Stage {
        /// The output's URL and how the user wrote it.
        url: String,
        display: String,
        data_dir: String,
        side_dir: String,
        max_file_size: u64,
        allow_empty: bool,
    },
    Discard,
}

/// An expression of pengine's own, as data.
#[derive(Debug, Serialize, Deserialize)]
enum Expr {
    /// The fast text-to-timestamp cast of its one input.
    IsoTimestamp { try_cast: bool },
}

fn framed(node: &impl Serialize, payload: &[u8], buf: &mut Vec<u8>) -> Result<()> {
    let json = serde_json::to_vec(node).map_err(|e| DataFusionError::External(Box::new(e)))?;
    buf.push(PENGINE);
    buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
    buf.extend_from_slice(&json);
    buf.extend_from_slice(payload);
    Ok(())
}

/// The node and payload of a message this codec wrote.
fn unframe<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<(T, &'a [u8])> {
    let bad = || DataFusionError::Internal("a pengine plan message is cut short".into());
    let len = buf.get(1..5).ok_or_else(bad)?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
    let json = buf.get(5..5 + len).ok_or_else(bad)?;
    let node = serde_json::from_slice(json).map_err(|e| {
        DataFusionError::Internal(format!(
            "a pengine plan message does not read ({e}): are the client, scheduler and \
             executors the same pengine version?"
        ))
    })?;
    Ok((node, &buf[5 + len..]))
}

impl PengineCodec {
    fn encode_write(&self, node: &WriteExec) -> Result<Node> {
        let (plan, options, target, _) = node.parts();
        let target = match target {
            WriteTarget::Stage {
                dest,
                data_dir,
                side_dir,
                max_file_size,
                allow_empty,
            } => Target::Stage {
                url: dest.url().map_err(external)?.to_string(),
                display: dest.display.clone(),
                data_dir: data_dir.to_string(),
                side_dir: side_dir.to_string(),
                max_file_size: *max_file_size,
                allow_empty: *allow_empty,
            },
            WriteTarget::Discard => Target::Discard,
        };
        Ok(Node::Write {
            dataset: plan.dataset.key().to_string(),
            hints: plan.hints.clone(),
            columns: plan.names().map(str::to_string).collect(),
            skip_invalid: options.policy == InvalidPolicy::Skip,
            insights: options.insights,
            target,
        })
    }

    fn decode_write(
        &self,
        node: Node,
        input: Arc<dyn ExecutionPlan>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Node::Write {
            dataset,
            hints,
            columns,
            skip_invalid,
            insights,
            target,
        } = node
        else {
            return Err(DataFusionError::Internal("not a write node".into()));
        };
        let dataset: DatasetType = dataset.parse().map_err(DataFusionError::Internal)?;
        let plan = ColumnPlan::new(&input.schema(), dataset, &hints).map_err(external)?;
        let planned: Vec<&str> = plan.names().collect();
        if planned != columns {
            return Err(DataFusionError::Internal(format!(
                "the executor planned the columns {planned:?}, the client {columns:?}"
            )));
        }
        let target = match target {
            Target::Stage {
                url,
                display,
                data_dir,
                side_dir,
                max_file_size,
                allow_empty,
            } => {
                let url = url::Url::parse(&url).map_err(|e| DataFusionError::External(e.into()))?;
                WriteTarget::Stage {
                    dest: Destination::at(&url, &display, &self.stores).map_err(external)?,
                    data_dir: Path::from(data_dir),
                    side_dir: Path::from(side_dir),
                    max_file_size,
                    allow_empty,
                }
            }
            Target::Discard => WriteTarget::Discard,
        };
        let options = BatchOptions {
            policy: if skip_invalid {
                InvalidPolicy::Skip
            } else {
                InvalidPolicy::Fail
            },
            insights,
        };
        Ok(Arc::new(WriteExec::per_task(
            input,
            Arc::new(plan),
            options,
            target,
        )))
    }

    fn encode_scan(
        &self,
        config: &FileScanConfig,
        source: &ExportSource,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let conf = serialize_file_scan_config(config, self, converter)?;
        let node = Node::Scan {
            format: source.format().spec(),
            bad_records_to: source
                .bad_records_out()
                .map(|out| out.to.clone())
                .or_else(|| self.bad_records_to.clone()),
        };
        framed(&node, &conf.encode_to_vec(), buf)
    }

    fn decode_scan(
        &self,
        format: FormatSpec,
        bad_records_to: Option<BadRecordsTo>,
        payload: &[u8],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let conf = FileScanExecConf::decode(payload)
            .map_err(|e| DataFusionError::Internal(format!("a scan does not read: {e}")))?;
        let table_schema = FileScanConfig::parse_table_schema_from_proto(&conf)?;
        let (bad_records, out) = match bad_records_to {
            Some(to) => {
                let url =
                    url::Url::parse(&to.url).map_err(|e| DataFusionError::External(e.into()))?;
                let log = Arc::new(BadRecordLog::new(BadRecordPolicy::Skip));
                let out = BadRecordsOut {
                    to,
                    log: Arc::clone(&log),
                    store: self.stores.store_for(&url).map_err(external)?,
                };
                (log, Some(Arc::new(out)))
            }
            None => (BadRecordLog::of(ctx.session_config()), None),
        };
        let format = format_from(format, bad_records).map_err(external)?;
        let mut source = ExportSource::new(table_schema, format);
        if let Some(out) = out {
            source = source.with_bad_records_out(out);
        }
        let source: Arc<dyn FileSource> = Arc::new(source);
        let decode_ctx = PhysicalPlanDecodeContext::new(ctx, self);
        let config = parse_protobuf_file_scan_config(&conf, &decode_ctx, converter, source)?;
        Ok(DataSourceExec::from_data_source(config))
    }
}

fn external(e: crate::error::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The scan of pengine's own reader in `node`, if it is one.
fn export_scan(node: &dyn ExecutionPlan) -> Option<(&FileScanConfig, &ExportSource)> {
    let exec = node.downcast_ref::<DataSourceExec>()?;
    let config = exec.data_source().downcast_ref::<FileScanConfig>()?;
    let source = config.file_source().downcast_ref::<ExportSource>()?;
    Some((config, source))
}

impl PhysicalExtensionCodec for PengineCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf.first() {
            Some(&BALLISTA) => self.ballista.try_decode(&buf[1..], inputs, ctx, converter),
            Some(&PENGINE) => {
                let (node, payload): (Node, &[u8]) = unframe(buf)?;
                let only_input = || {
                    inputs.first().cloned().ok_or_else(|| {
                        DataFusionError::Internal("a pengine node came without its input".into())
                    })
                };
                match node {
                    Node::Scan {
                        format,
                        bad_records_to,
                    } => self.decode_scan(format, bad_records_to, payload, ctx, converter),
                    Node::Distinct { names } => {
                        let input = only_input()?;
                        let input_schema = input.schema();
                        let fields: Vec<Field> = input_schema
                            .fields()
                            .iter()
                            .zip(&names)
                            .map(|(field, name)| field.as_ref().clone().with_name(name))
                            .collect();
                        Ok(Arc::new(DistinctExec::new(
                            input,
                            Arc::new(Schema::new(fields)),
                        )))
                    }
                    write @ Node::Write { .. } => self.decode_write(write, only_input()?),
                }
            }
            _ => Err(DataFusionError::Internal(
                "a plan message of an unknown kind: are the client, scheduler and executors \
                 the same pengine version?"
                    .into(),
            )),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some((config, source)) = export_scan(node.as_ref()) {
            return self.encode_scan(config, source, buf, converter);
        }
        if let Some(distinct) = node.downcast_ref::<DistinctExec>() {
            let names = distinct
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            return framed(&Node::Distinct { names }, &[], buf);
        }
        if let Some(write) = node.downcast_ref::<WriteExec>() {
            return framed(&self.encode_write(write)?, &[], buf);
        }
        buf.push(BALLISTA);
        self.ballista
            .try_encode(Arc::clone(&node), buf, converter)
            .map_err(|_| {
                DataFusionError::NotImplemented(format!(
                    "the plan's {} cannot run on a cluster yet (pengine sends scans of files, \
                     DataFusion's operators and its own; database sources run locally): run \
                     this mapping file without --cluster",
                    node.name()
                ))
            })
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        _ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        if buf.first() != Some(&PENGINE) {
            return Err(DataFusionError::Internal(
                "an expression pengine does not know".into(),
            ));
        }
        let (expr, _): (Expr, &[u8]) = unframe(buf)?;
        match (expr, inputs) {
            (Expr::IsoTimestamp { try_cast }, [input]) => {
                Ok(IsoTimestampCast::of_input(Arc::clone(input), try_cast))
            }
            _ => Err(DataFusionError::Internal(
                "a timestamp cast came without its one input".into(),
            )),
        }
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        _ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> Result<()> {
        match node.downcast_ref::<IsoTimestampCast>() {
            Some(cast) => framed(
                &Expr::IsoTimestamp {
                    try_cast: cast.is_try(),
                },
                &[],
                buf,
            ),
            None => Err(DataFusionError::NotImplemented(format!(
                "pengine cannot send the expression {node} to a cluster"
            ))),
        }
    }
}
