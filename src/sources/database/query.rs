//! `OPTIONS ('query' 'SELECT ...')`: a read-only query of a PostgreSQL or MySQL database as a
//! table.
//!
//! The query must be one SELECT (no INTO, no row locks); PostgreSQL sessions are read-only
//! besides (see `postgres_pool`). Its columns come from the server's description of the
//! prepared statement, without running it. The mapping's projection, filters and limit
//! wrap it as a derived table: `SELECT cols FROM (query) AS pengine_query WHERE ...`. The scan
//! is a node of its own: the provider crate's node edits its SQL text to push filters and
//! limits, which would cut into a query it does not know.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result as DfResult, TableReference};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::sql::sqlparser::ast::{SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::{
    Dialect as ParseDialectTrait, MySqlDialect as MySqlParse, PostgreSqlDialect as PostgresParse,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::unparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use datafusion_table_providers::mysql::DynMySQLConnectionPool;
use datafusion_table_providers::postgres::DynPostgresConnectionPool;
use datafusion_table_providers::sql::arrow_sql_gen::mysql;
use datafusion_table_providers::sql::db_connection_pool::DbConnectionPool;
use datafusion_table_providers::sql::db_connection_pool::mysqlpool::MySQLConnectionPool;
use datafusion_table_providers::sql::db_connection_pool::postgrespool::PostgresConnectionPool;
use datafusion_table_providers::sql::sql_provider_datafusion::{
    SqlTable, default_filter_pushdown, get_stream, project_schema_safe,
};
use futures::TryStreamExt;
use mysql_async::prelude::Queryable;

use crate::error::Error;

/// The name the query goes by inside the SQL pengine sends.
const ALIAS: &str = "pengine_query";

/// Refuses anything but one plain SELECT (or VALUES, WITH ... SELECT): why, when refused.
pub(super) fn check_read_only(query: &str, dialect: &dyn ParseDialectTrait) -> Result<(), String> {
    let statements =
        Parser::parse_sql(dialect, query).map_err(|e| format!("does not parse: {e}"))?;
    let [Statement::Query(q)] = statements.as_slice() else {
        return Err("must be one SELECT statement".into());
    };
    if !q.locks.is_empty() {
        return Err("locks rows (FOR UPDATE/SHARE); remove the locking clause".into());
    }
    match q.body.as_ref() {
        SetExpr::Select(select) if select.into.is_some() => {
            Err("writes a table (SELECT ... INTO); pengine only reads".into())
        }
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            Err("changes data; pengine only reads".into())
        }
        _ => Ok(()),
    }
}

/// A query pengine does not run, and why (`who` names the mapping's table).
fn refused(who: &str, why: &str) -> Error {
    Error::Config(format!(
        "{who}: OPTIONS ('query' ...) {why}. Write one read-only SELECT, or name a table or view \
         with OPTIONS ('table' ...)"
    ))
}

/// A server that could not be reached to describe the query.
fn unreachable(who: &str, server: &str, e: &impl std::fmt::Display) -> Error {
    Error::Database(format!(
        "{who}: cannot connect to {server}: {}",
        super::first_line(&e.to_string())
    ))
}

/// The query as a table of `pool`'s database. `who` names the mapping's table in errors.
pub(super) async fn postgres_query_table(
    pool: Arc<PostgresConnectionPool>,
    query: &str,
    who: &str,
    server: &str,
) -> Result<Arc<dyn TableProvider>, Error> {
    check_read_only(query, &PostgresParse {}).map_err(|why| refused(who, &why))?;
    let conn = pool
        .connect_direct()
        .await
        .map_err(|e| unreachable(who, server, &e))?;
    let statement = conn.conn.prepare(query).await.map_err(|e| {
        let why = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string());
        Error::Database(format!("{who}: {server} cannot run the query: {why}"))
    })?;
    let mut fields = Vec::new();
    for column in statement.columns() {
        let name = column.name();
        let Some(data_type) = arrow_type(column.type_().name()) else {
            return Err(Error::Config(format!(
                "{who}: the query's column {name} is of type {}, which pengine does not read \
                 from a query: cast it there ({name}::float8 for a number, {name}::text to keep \
                 its exact text)",
                column.type_().name()
            )));
        };
        fields.push(Field::new(name, data_type, true));
    }
    let dyn_pool: Arc<DynPostgresConnectionPool> = pool;
    Ok(QueryTable::provider(
        query,
        Arc::new(Schema::new(fields)),
        dyn_pool,
        Arc::new(PostgreSqlDialect {}),
        format!("\"{ALIAS}\""),
    ))
}

/// The query as a table of a MySQL database.
pub(super) async fn mysql_query_table(
    pool: Arc<MySQLConnectionPool>,
    query: &str,
    who: &str,
    server: &str,
) -> Result<Arc<dyn TableProvider>, Error> {
    check_read_only(query, &MySqlParse {}).map_err(|why| refused(who, &why))?;
    if query.contains('"') {
        // The crate's MySQL reader deletes every double quote from the SQL it sends.
        return Err(refused(
            who,
            "holds a double quote, which the MySQL reader would delete; quote strings with ' \
             and names with `",
        ));
    }
    let conn = pool
        .connect_direct()
        .await
        .map_err(|e| unreachable(who, server, &e))?;
    let statement = {
        let mut conn = conn.conn.lock().await;
        conn.prep(query).await.map_err(|e| {
            Error::Database(format!(
                "{who}: {server} cannot run the query: {}",
                super::first_line(&e.to_string())
            ))
        })?
    };
    let mut fields = Vec::new();
    for column in statement.columns().iter() {
        let name = column.name_str().to_string();
        let flags = column.flags().bits();
        let column_type = column.column_type();
        let decimal = matches!(
            column_type,
            mysql_async::consts::ColumnType::MYSQL_TYPE_DECIMAL
                | mysql_async::consts::ColumnType::MYSQL_TYPE_NEWDECIMAL
        );
        // As the crate's row conversion types them (its flags, and 65 digits for decimals).
        let data_type = mysql::map_column_to_data_type(
            column_type,
            flags & MYSQL_BINARY_FLAG != 0 && column.character_set() == MYSQL_BINARY_CHARSET,
            flags & MYSQL_ENUM_FLAG != 0,
            flags & MYSQL_UNSIGNED_FLAG != 0,
            column.column_length() > 2_u32.pow(31) - 1,
            decimal.then_some(65),
            decimal.then_some(column.decimals() as i8),
        );
        let Some(data_type) = data_type.filter(|t| *t != DataType::Null) else {
            return Err(Error::Config(format!(
                "{who}: the query's column {name} is of a type ({column_type:?}) pengine does not \
                 read from a query: cast it there (CAST({name} AS CHAR))"
            )));
        };
        fields.push(Field::new(name, data_type, true));
    }
    let dyn_pool: Arc<DynMySQLConnectionPool> = pool;
    Ok(QueryTable::provider(
        query,
        Arc::new(Schema::new(fields)),
        dyn_pool,
        Arc::new(MySqlDialect {}),
        format!("`{ALIAS}`"),
    ))
}

/// MySQL's column definition flags and the `binary` character set (its protocol's numbers).
const MYSQL_UNSIGNED_FLAG: u16 = 32;
const MYSQL_BINARY_FLAG: u16 = 128;
const MYSQL_ENUM_FLAG: u16 = 256;
const MYSQL_BINARY_CHARSET: u16 = 63;

/// The Arrow type the provider crate reads a PostgreSQL type as (the same mapping its row
/// conversion makes), for the types a query's columns may have; None for others (`numeric`
/// takes its scale from the first row, so it must be cast).
fn arrow_type(postgres_type: &str) -> Option<DataType> {
    Some(match postgres_type {
        "int2" => DataType::Int16,
        "int4" => DataType::Int32,
        "int8" => DataType::Int64,
        "float4" => DataType::Float32,
        "float8" => DataType::Float64,
        "text" | "varchar" | "bpchar" | "name" | "uuid" => DataType::Utf8,
        "bool" => DataType::Boolean,
        "timestamptz" => DataType::Timestamp(TimeUnit::Nanosecond, Some(Arc::from("UTC"))),
        "timestamp" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        "date" => DataType::Date32,
        _ => return None,
    })
}

/// A query as a table: its scans send `SELECT ... FROM (query) AS pengine_query ...`.
struct QueryTable<T: 'static, P: 'static> {
    query: String,
    schema: SchemaRef,
    /// A table named like the alias, to write the outer SELECT with the crate's unparser.
    template: SqlTable<T, P>,
    pool: Arc<dyn DbConnectionPool<T, P> + Send + Sync>,
    dialect: Arc<dyn Dialect + Send + Sync>,
    /// The alias as the dialect quotes it.
    alias: String,
}

impl<T: 'static, P: 'static> QueryTable<T, P> {
    /// The query as a table provider.
    fn provider(
        query: &str,
        schema: SchemaRef,
        pool: Arc<dyn DbConnectionPool<T, P> + Send + Sync>,
        dialect: Arc<dyn Dialect + Send + Sync>,
        alias: String,
    ) -> Arc<dyn TableProvider> {
        let template = SqlTable::new_with_schema(
            "query",
            &pool,
            Arc::clone(&schema),
            TableReference::bare(ALIAS),
        )
        .with_dialect(Arc::clone(&dialect));
        Arc::new(QueryTable {
            query: query.trim().trim_end_matches(';').to_string(),
            schema,
            template,
            pool,
            dialect,
            alias,
        })
    }
}

impl<T, P> fmt::Debug for QueryTable<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryTable({})", self.query)
    }
}

#[async_trait]
impl<T: 'static, P: 'static> TableProvider for QueryTable<T, P> {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(default_filter_pushdown(filters, self.dialect.as_ref()))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let outer = self.template.scan_to_sql(projection, filters, limit)?;
        let from = format!("FROM {}", self.alias);
        if outer.matches(&from).count() != 1 {
            return Err(DataFusionError::Internal(format!(
                "cannot place the query in {outer}"
            )));
        }
        let sql = outer.replacen(
            &from,
            &format!("FROM ({}) AS {}", self.query, self.alias),
            1,
        );
        let schema = project_schema_safe(&self.schema, projection)?;
        Ok(Arc::new(QueryExec::new(
            sql,
            schema,
            Arc::clone(&self.pool),
        )))
    }
}

/// Runs one SQL text on the database and streams its rows. Filters and limits reach it only
/// through the scan (it accepts none of the physical optimizer's: see the module doc).
struct QueryExec<T: 'static, P: 'static> {
    sql: String,
    schema: SchemaRef,
    pool: Arc<dyn DbConnectionPool<T, P> + Send + Sync>,
    properties: Arc<PlanProperties>,
}

impl<T, P> QueryExec<T, P> {
    fn new(
        sql: String,
        schema: SchemaRef,
        pool: Arc<dyn DbConnectionPool<T, P> + Send + Sync>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        QueryExec {
            sql,
            schema,
            pool,
            properties: Arc::new(properties),
        }
    }
}

impl<T, P> fmt::Debug for QueryExec<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryExec sql={}", self.sql)
    }
}

impl<T, P> DisplayAs for QueryExec<T, P> {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "QueryExec sql={}", self.sql)
    }
}

impl<T: 'static, P: 'static> ExecutionPlan for QueryExec<T, P> {
    fn name(&self) -> &str {
        "QueryExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let rows = get_stream(
            Arc::clone(&self.pool),
            self.sql.clone(),
            Arc::clone(&self.schema),
        );
        let stream = futures::stream::once(rows).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}
