//! Sources named by a mapping file's `CREATE EXTERNAL TABLE`: JSON (every layout), CSV and
//! Parquet, local or on an object store, single files or folders read recursively.

pub mod bad_records;
pub mod bad_records_out;
pub mod compression;
pub mod csv;
mod csv_columns;
mod csv_format;
mod csv_infer_ranges;
mod csv_kinds;
pub mod csv_options;
pub mod csv_ranges;
pub mod csv_records;
pub mod csv_scan;
pub mod database;
pub mod encoding;
pub mod exclude;
pub mod factory;
pub mod gzip;
pub mod json;
pub mod listing;
pub mod object_read;
pub mod parquet;
pub mod read_ahead;
pub mod rebuild;
pub mod sampled;
pub mod scan;
pub mod scan_spec;
pub mod segments;
pub mod selection;
pub mod split;
pub mod unchecked_cuts;

pub use factory::SourceTableFactory;

/// A source file's name for a person (errors, bad records, the report): a local file's absolute
/// path, another store's URL (`store`: any URL on that store). An object_store path has neither
/// the leading slash nor the store.
pub fn file_name(store: &url::Url, location: &object_store::path::Path) -> String {
    match store.scheme() {
        "file" => format!("/{location}"),
        scheme => format!("{scheme}://{}/{location}", store.authority()),
    }
}

/// Longest record a JSON or CSV reader holds by default (a longer one is a bad record, skipped
/// without being held); the table option `'format.max_record_bytes'` changes it.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 16 << 20;

/// Bytes of records a JSON or CSV reader gathers for one batch at most (fewer records than the
/// batch size when they are large), so memory stays bounded whatever the record size.
pub const BATCH_BYTES: usize = 32 << 20;

/// What is known of a file before reading it: its size. Enough for DataFusion's join selection to
/// build hash tables on the smaller side (a catalog, not the click stream).
pub fn file_size_statistics(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    object: &object_store::ObjectMeta,
) -> datafusion::common::Statistics {
    use datafusion::common::stats::Precision;
    let mut statistics = datafusion::common::Statistics::new_unknown(schema);
    statistics.total_byte_size = Precision::Inexact(object.size as usize);
    statistics
}

/// The error of type `T` among `e`'s causes, however a scan's error was wrapped on its way up
/// (errors shared between partitions, contexts, Arrow errors of a stream, pengine's own error):
/// how a run finds the errors it recovers from by running again.
pub fn find_cause<'e, T: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    use datafusion::error::DataFusionError;
    let mut cause = Some(e);
    while let Some(error) = cause {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        cause = match error.downcast_ref::<DataFusionError>() {
            Some(DataFusionError::Shared(inner)) => Some(inner.as_ref()),
            Some(DataFusionError::Context(_, inner)) => Some(inner.as_ref()),
            Some(DataFusionError::External(inner)) => Some(inner.as_ref()),
            Some(DataFusionError::ArrowError(inner, _)) => Some(inner.as_ref()),
            _ => error.source(),
        };
    }
    None
}

/// `bytes` as a stream of chunks of `size` bytes (the last one shorter), as a store or a
/// decompressor hands them out: the tests' way to feed a reader every chunking.
#[cfg(test)]
pub(crate) fn in_chunks(
    bytes: &[u8],
    size: usize,
) -> futures::stream::BoxStream<'static, datafusion::common::Result<bytes::Bytes>> {
    use futures::StreamExt;
    let chunks: Vec<datafusion::common::Result<bytes::Bytes>> = bytes
        .chunks(size.max(1))
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::object_store::ObjectStoreUrl;

    #[test]
    fn file_names_are_absolute_paths_or_urls() {
        let key = object_store::path::Path::from("tmp/x/users/a.json");
        let local = ObjectStoreUrl::local_filesystem();
        assert_eq!(file_name(local.as_ref(), &key), "/tmp/x/users/a.json");
        let s3 = ObjectStoreUrl::parse("s3://bucket").unwrap();
        assert_eq!(
            file_name(s3.as_ref(), &key),
            "s3://bucket/tmp/x/users/a.json"
        );
        let prefix = url::Url::parse("s3://bucket/tmp/").unwrap();
        assert_eq!(file_name(&prefix, &key), "s3://bucket/tmp/x/users/a.json");
    }
}
