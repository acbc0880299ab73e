//! A reader rebuilt from its settings ([`super::scan_spec`]), in the process that runs the scan
//! (a cluster's executor): the format a spec names, with the receiving session's bad-records log.

use std::sync::Arc;

use super::bad_records::BadRecordLog;
use super::csv::ExportCsvFormat;
use super::json::ExportJsonFormat;
use super::scan::RecordFormat;
use super::scan_spec::FormatSpec;
use crate::error::Result;

/// The reader `spec` describes, recording bad records in `bad_records`.
pub fn format_from(
    spec: FormatSpec,
    bad_records: Arc<BadRecordLog>,
) -> Result<Arc<dyn RecordFormat>> {
    Ok(match spec {
        FormatSpec::Json(spec) => Arc::new(ExportJsonFormat::from_spec(spec, bad_records)?),
        FormatSpec::Csv(spec) => Arc::new(ExportCsvFormat::from_spec(spec, bad_records)?),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::datasource::file_format::csv::CsvFormat;
    use datafusion::execution::object_store::ObjectStoreUrl;

    use super::*;
    use crate::sources::csv::{CsvDialect, ExportCsvFormat};
    use crate::sources::csv_kinds::CsvSample;
    use crate::sources::encoding::TextEncoding;
    use crate::sources::json::ExportJsonFormat;
    use crate::sources::json::fit::Shape;
    use crate::sources::json::infer::Inferred;
    use crate::sources::scan_spec::InferredSpec;

    #[test]
    fn a_json_reader_comes_back_with_its_sample_and_known_bad_records() {
        let format = ExportJsonFormat {
            max_record_bytes: 1234,
            encoding: TextEncoding::from_label("latin1").unwrap(),
            store_url: ObjectStoreUrl::parse("s3://bucket").unwrap(),
            ..ExportJsonFormat::default()
        };
        format
            .known_bad
            .lock()
            .unwrap()
            .insert("a.json".into(), vec![(7, "not JSON".into())]);
        let record = Inferred::Object(vec![
            ("id".into(), Inferred::Int),
            (
                "ctx".into(),
                Inferred::Object(vec![(
                    "tags".into(),
                    Inferred::List(Box::new(Inferred::Text)),
                )]),
            ),
        ]);
        *format.shape.lock().unwrap() = Some(Shape::new(record.clone(), 99));
        let spec = format.spec();
        let text = serde_json::to_string(&spec).unwrap();
        let back: FormatSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
        let rebuilt = format_from(back.clone(), Arc::default()).unwrap();
        assert_eq!(rebuilt.spec(), spec);
        let FormatSpec::Json(json) = back else {
            panic!("not JSON")
        };
        let (kind, sampled) = json.shape.unwrap();
        assert_eq!((kind.to_inferred(), sampled), (record, 99));
    }

    #[test]
    fn a_csv_reader_comes_back_with_its_dialect_whole_files_and_sample() {
        let dialect = CsvDialect {
            has_header: false,
            delimiter: b';',
            quote: b'\'',
            escape: Some(b'\\'),
            comment: Some(b'#'),
            newlines_in_values: true,
        };
        let mut format =
            ExportCsvFormat::new(Arc::new(CsvFormat::default()), dialect, Arc::default());
        format.split = false;
        format
            .files_read_whole()
            .lock()
            .unwrap()
            .insert("big.csv".into());
        let sample: CsvSample = serde_json::from_str(
            r#"{"names":["id","tag"],"kinds":[
                {"seen":true,"not_integer":false,"not_float":false,"not_bool":true},
                {"seen":false,"not_integer":false,"not_float":false,"not_bool":false}],
                "sampled":20000}"#,
        )
        .unwrap();
        *format.sample.lock().unwrap() = Some(Arc::new(sample.clone()));
        let spec = format.spec();
        let text = serde_json::to_string(&spec).unwrap();
        let back: FormatSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
        let rebuilt = format_from(back, Arc::default()).unwrap();
        assert_eq!(rebuilt.spec(), spec);
        assert!(!rebuilt.splits_files());
        let FormatSpec::Csv(csv) = rebuilt.spec() else {
            panic!("not CSV")
        };
        assert_eq!(csv.sample, Some(sample));
    }

    #[test]
    fn a_conflicting_type_has_no_spec() {
        let record = Inferred::Object(vec![("x".into(), Inferred::Conflict("mixed"))]);
        assert_eq!(InferredSpec::of(&record), None);
    }
}
