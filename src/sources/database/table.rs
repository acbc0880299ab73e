//! A database table as a mapping file sees it: the provider crate's reader, plus what pengine
//! adds on top. It names its server and table without secrets (for `pengine sources`), keeps
//! the SQL each scan sends (what was pushed down), and reads MySQL's BOOLEAN columns
//! (`TINYINT(1)`) as booleans, as MySQL's clients do.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, displayable};

use super::read_exec::DatabaseReadExec;
use crate::error::Error;

/// Where a database table's rows come from, as messages and `pengine sources` show it.
#[derive(Debug, Clone)]
pub struct DatabaseOrigin {
    /// The mapping file's name for the table.
    pub name: String,
    /// `POSTGRES`, `MYSQL` or `SQLITE`.
    pub format: &'static str,
    /// The server and database (`postgres://user@host:port/db`) or the SQLite file, no secret.
    pub server: String,
    /// The table or view read.
    pub table: String,
}

/// A read-only database table with its origin, pushdown record and boolean columns.
#[derive(Debug)]
pub struct DatabaseTable {
    inner: Arc<dyn TableProvider>,
    origin: DatabaseOrigin,
    schema: SchemaRef,
    /// Columns the database holds as small integers and SQL sees as booleans.
    booleans: Vec<String>,
    /// Columns a query may not read as they are, with why and the cast that reads them.
    refused: Vec<(String, String)>,
    /// The SQL of each scan planned so far.
    sent: Mutex<Vec<String>>,
}

impl DatabaseTable {
    pub fn new(
        inner: Arc<dyn TableProvider>,
        origin: DatabaseOrigin,
        booleans: Vec<String>,
    ) -> Self {
        let fields: Vec<Field> = inner
            .schema()
            .fields()
            .iter()
            .map(|f| {
                if booleans.contains(f.name()) {
                    Field::new(f.name(), DataType::Boolean, f.is_nullable())
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            inner.schema().metadata().clone(),
        ));
        DatabaseTable {
            inner,
            origin,
            schema,
            booleans,
            refused: Vec::new(),
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Refuses scans that read `column`, with `message` (which says what to write instead).
    pub fn refusing(mut self, refused: Vec<(String, String)>) -> Self {
        self.refused = refused;
        self
    }

    pub fn origin(&self) -> &DatabaseOrigin {
        &self.origin
    }

    /// The SQL each scan planned so far sends to the database (projection, filters and limit
    /// pushed down).
    pub fn sent_sql(&self) -> Vec<String> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn reads_boolean(&self, expr: &Expr) -> bool {
        expr.column_refs()
            .iter()
            .any(|c| self.booleans.contains(&c.name))
    }
}

#[async_trait]
impl TableProvider for DatabaseTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // A filter on a boolean read from an integer is applied after the conversion: the
        // database compares integers, and its SQL would not be the same test. On MySQL, the
        // crate's reader deletes every double quote from the SQL it sends, so a filter whose text
        // holds one is applied here instead, where it means what it says.
        let inner = self.inner.supports_filters_pushdown(filters)?;
        Ok(filters
            .iter()
            .zip(inner)
            .map(|(f, pushed)| {
                let loses_quotes = self.origin.format == "MYSQL" && holds_double_quote(f);
                if self.reads_boolean(f) || loses_quotes {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    pushed
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let read: Vec<&str> = match projection {
            Some(columns) => columns
                .iter()
                .map(|&i| self.schema.field(i).name().as_str())
                .collect(),
            None => self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect(),
        };
        if let Some((_, message)) = self
            .refused
            .iter()
            .find(|(c, _)| read.contains(&c.as_str()))
        {
            return Err(DataFusionError::External(Box::new(Error::Config(
                message.clone(),
            ))));
        }
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        let shown = displayable(plan.as_ref()).one_line().to_string();
        let sql = shown
            .split_once(" sql=")
            .map_or(shown.trim(), |(_, sql)| sql.trim())
            .to_string();
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(sql);
        }
        let read = plan.schema();
        let columns: Vec<usize> = (0..read.fields().len())
            .filter(|&i| self.booleans.contains(read.field(i).name()))
            .collect();
        let fields: Vec<Field> = read
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| match columns.contains(&i) {
                true => Field::new(f.name(), DataType::Boolean, f.is_nullable()),
                false => f.as_ref().clone(),
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, read.metadata().clone()));
        let reading = format!(
            "table {}: cannot read {} of {}",
            self.origin.name, self.origin.table, self.origin.server
        );
        Ok(Arc::new(DatabaseReadExec::new(
            plan,
            columns,
            schema,
            reading.into(),
        )))
    }
}

/// Whether a text literal in `expr` holds a `"`.
fn holds_double_quote(expr: &Expr) -> bool {
    let mut found = false;
    let _ = expr.apply(|e| {
        if let Expr::Literal(value, _) = e
            && value.to_string().contains('"')
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}
