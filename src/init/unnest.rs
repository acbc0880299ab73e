//! Records that hold their items in a nested array (an order whose `lines: [{sku, qty, price}]`
//! are what was bought): init reads them through a view with one row per element (`unnest`), so
//! that the dataset type and the columns follow from an element's fields, not from the record.

use datafusion::arrow::datatypes::DataType;
use serde::Serialize;

use super::roles::{self, Role};
use crate::crawl::ColumnProfile;
use crate::crawl::profile::snake_case;
use crate::personalize::DatasetType;

/// A nested array of items, and the view that reads one row per element of it.
#[derive(Debug, Clone, Serialize)]
pub struct Unnest {
    /// Where the array is in a record (`lines`, `order.lines`).
    pub path: String,
    /// The expression selecting it (`lines`, `"orderLines"`, `order['lines']`).
    pub expr: String,
    /// The name of one element in the view (`line`).
    pub element: String,
    /// The view's name (`orders_lines`).
    pub view: String,
}

impl Unnest {
    /// `CREATE VIEW` reading `table` with one row per element; a top-level array is left out of
    /// the view's columns, since its element is there.
    pub fn view_sql(&self, table: &str) -> String {
        let columns = if self.path.contains('.') {
            "*".to_string()
        } else {
            format!("* EXCLUDE ({})", self.expr)
        };
        format!(
            "CREATE VIEW {} AS SELECT {columns}, unnest({}) AS {} FROM {table};",
            self.view, self.expr, self.element
        )
    }
}

/// The array to read one row per element of: the first array of objects with an item id among
/// their fields, when the records have no item id of their own. `table` names the view.
pub fn find(table: &str, columns: &[ColumnProfile]) -> Option<Unnest> {
    let own_item = columns.iter().any(|p| {
        roles::named(p, Role::ItemId, Some(DatasetType::Interactions)) && roles::id_like(p)
    });
    if own_item {
        return None;
    }
    let array = columns.iter().find(|p| {
        element_fields(&p.data_type).is_some_and(|fields| {
            fields
                .iter()
                .any(|name| roles::path_named(name, Role::ItemId, Some(DatasetType::Interactions)))
        })
    })?;
    let last = array.path.rsplit('.').next().unwrap_or(&array.path);
    let plural = snake_case(last);
    let taken = |name: &str| columns.iter().any(|p| p.path.eq_ignore_ascii_case(name));
    // `lines` → `line`; an array whose name is no plural gets `_item`.
    let mut element = match plural.strip_suffix('s') {
        Some(single) if single.len() >= 3 && !single.ends_with('s') => single.to_string(),
        _ => format!("{plural}_item"),
    };
    while taken(&element) {
        element.push('_');
    }
    Some(Unnest {
        path: array.path.clone(),
        expr: array.expr.clone(),
        element,
        view: format!("{table}_{plural}"),
    })
}

/// The field names of an array of objects.
fn element_fields(data_type: &DataType) -> Option<Vec<&str>> {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => {
            match item.data_type() {
                DataType::Struct(fields) => {
                    Some(fields.iter().map(|f| f.name().as_str()).collect())
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Fields};

    use super::*;

    fn column(path: &str, data_type: DataType) -> ColumnProfile {
        ColumnProfile {
            path: path.into(),
            expr: crate::crawl::profile::quote_identifier(path),
            name: snake_case(path),
            data_type,
            rows: 10,
            nulls: 0,
            distinct: 10,
            min: None,
            max: None,
            time_text: 0.0,
            integer_text: 0.0,
            avg_len: 5.0,
            max_len: 8,
            spaced: 0.0,
            path_separator: None,
            examples: Vec::new(),
        }
    }

    fn array_of(fields: &[&str]) -> DataType {
        let fields: Fields = fields
            .iter()
            .map(|f| Field::new(*f, DataType::Utf8, true))
            .collect();
        DataType::List(Arc::new(Field::new("item", DataType::Struct(fields), true)))
    }

    #[test]
    fn an_array_of_items_is_unnested_when_records_have_no_item_of_their_own() {
        let order = [
            column("user_id", DataType::Utf8),
            column("orderLines", array_of(&["sku", "qty"])),
        ];
        let unnest = find("orders", &order).expect("an array of items");
        assert_eq!(
            (
                unnest.expr.as_str(),
                unnest.element.as_str(),
                unnest.view.as_str()
            ),
            ("\"orderLines\"", "order_line", "orders_order_lines")
        );
        assert_eq!(
            unnest.view_sql("orders"),
            "CREATE VIEW orders_order_lines AS SELECT * EXCLUDE (\"orderLines\"), \
             unnest(\"orderLines\") AS order_line FROM orders;"
        );
        // Records that name their item themselves, or arrays without an item id: nothing.
        let own = [
            column("sku", DataType::Utf8),
            column("lines", array_of(&["sku"])),
        ];
        assert!(find("orders", &own).is_none());
        let tags = [column("tags", array_of(&["label", "weight"]))];
        assert!(find("orders", &tags).is_none());
    }

    #[test]
    fn the_element_name_never_takes_a_column_of_the_record() {
        let order = [
            column("line", DataType::Utf8),
            column("lines", array_of(&["product_id"])),
        ];
        assert_eq!(find("orders", &order).unwrap().element, "line_");
        let basket = [column("basket", array_of(&["item_id"]))];
        assert_eq!(find("orders", &basket).unwrap().element, "basket_item");
    }
}
