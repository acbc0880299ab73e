//! Database tables as sources, against a real PostgreSQL server the test starts (common/postgres)
//! and SQLite files: types as Personalize needs them, a join with a JSON export, filters pushed
//! down, logins from PGPASSWORD or a password file only, clear errors without secrets, and
//! nothing ever written to a database.

use std::path::Path;

use crate::common::postgres::{ADMIN, PgServer};
use crate::common::*;

const READER_PASSWORD: &str = "reader-s3cret-pw";

/// A server with a `crm` database: `customers` (every type the mapping takes) readable by the
/// role `reader`.
fn crm() -> PgServer {
    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE crm");
    pg.psql(
        "crm",
        &format!(
            "CREATE TYPE tier AS ENUM ('free', 'gold');
             CREATE TABLE customers (id bigint PRIMARY KEY, name text, signed_up timestamptz,
                                     balance numeric(10,2), active boolean, tier tier);
             INSERT INTO customers VALUES
               (9007199254740993, 'Ann', '2024-03-01 12:00:00+01', 12.50, true, 'gold'),
               (2, 'Bob', NULL, 0.10, false, 'free'),
               (3, 'Cy', '2024-03-02 00:00:00+00', 99.99, false, 'gold');
             CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}';
             GRANT SELECT ON customers TO reader;"
        ),
    );
    pg
}

fn users_mapping(dir: &Path) -> std::path::PathBuf {
    let mapping = dir.join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE c STORED AS POSTGRES LOCATION '${pg}' OPTIONS ('table' 'public.customers');\n\
         SELECT id AS user_id, signed_up AS signed_up, balance AS balance, active AS active, tier AS tier\n\
         FROM c WHERE active OR balance < 1;\n",
    );
    mapping
}

fn run_users(pg: &PgServer, dir: &Path, password: Option<&str>) -> std::process::Command {
    let mut cmd = run_mapping(
        &users_mapping(dir),
        &format!("pg={}", pg.location("reader", "crm")),
        dir.join("out"),
        &["--no-insights"],
    );
    cmd.env_remove("PGPASSWORD")
        .env("PGPASSFILE", dir.join("no-such-pgpass"));
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    cmd
}

/// The users dataset both servers' `customers` give (active ones, and those with under 1).
#[track_caller]
fn assert_customers_as_users(data: &Path) {
    let users = read_dataset(data);
    assert_eq!(
        users.header,
        ["USER_ID", "SIGNED_UP", "BALANCE", "ACTIVE", "TIER"]
    );
    let mut rows = users.rows;
    rows.sort();
    assert_eq!(
        rows,
        [
            // A bigint id beyond a double's exact integers stays exact; a timestamp is epoch
            // seconds; a decimal a double; a boolean True/False; an enum its label.
            vec!["2", "", "0.1", "False", "free"],
            vec!["9007199254740993", "1709290800", "12.5", "True", "gold"],
        ]
    );
}

#[test]
fn postgres_types_become_what_personalize_needs() {
    let pg = crm();
    let dir = tempfile::tempdir().unwrap();
    run_ok(&mut run_users(&pg, dir.path(), Some(READER_PASSWORD)));
    assert_customers_as_users(&dir.path().join("out/users"));
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/users.schema.json")).unwrap())
            .unwrap();
    let types: Vec<String> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].to_string())
        .collect();
    assert_eq!(types[0], "\"string\"", "{schema}");
    assert_nothing_written(&pg);
}

/// Only the seeding (the admin's statements) changed the database: the server logs every
/// statement that changes data or schema, and the seeding's are there, so the log works.
#[track_caller]
fn assert_nothing_written(pg: &PgServer) {
    let (admin, others): (Vec<String>, Vec<String>) = pg
        .logged_changes()
        .into_iter()
        .partition(|l| l.starts_with(&format!("{ADMIN}:")));
    assert!(
        admin.iter().any(|l| l.contains("CREATE DATABASE crm")),
        "the server did not log the seeding, so the check below proves nothing: {admin:?}"
    );
    assert!(others.is_empty(), "statements that change data: {others:?}");
    assert_eq!(pg.psql("crm", "SELECT count(*) FROM customers").trim(), "3");
}

#[test]
fn a_postgres_table_joins_a_json_export_with_its_filter_pushed_down() {
    let pg = crm();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path().join("events/e.json"),
        "{\"user\":\"9007199254740993\",\"item\":\"i1\",\"ts\":1709290800}\n\
         {\"user\":\"2\",\"item\":\"i2\",\"ts\":1709290801}\n\
         {\"user\":\"404\",\"item\":\"i3\",\"ts\":1709290802}\n",
    );
    let mapping = dir.path().join("interactions.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${events}';\n\
         CREATE EXTERNAL TABLE c STORED AS POSTGRES LOCATION '${pg}' OPTIONS ('table' 'public.customers');\n\
         SELECT e.user AS user_id, e.item AS item_id, e.ts AS timestamp\n\
         FROM e JOIN c ON e.user = CAST(c.id AS VARCHAR) WHERE c.active;\n",
    );
    let vars = [
        format!("events={}/", dir.path().join("events").display()),
        format!("pg={}", pg.location("reader", "crm")),
    ];
    let with_vars = |cmd: &mut std::process::Command| {
        for var in &vars {
            cmd.args(["--var", var]);
        }
        cmd.env("PGPASSWORD", READER_PASSWORD);
    };
    let mut run = pengine();
    run.arg("run")
        .arg(&mapping)
        .args(["--no-insights", "-o"])
        .arg(dir.path().join("out"));
    with_vars(&mut run);
    run_ok(&mut run);
    let rows = read_dataset(&dir.path().join("out/interactions")).rows;
    assert_eq!(rows, [vec!["9007199254740993", "i1", "1709290800"]]);

    let mut explain = pengine();
    explain.arg("explain").arg(&mapping);
    with_vars(&mut explain);
    let plan = stdout(&run_ok(&mut explain));
    // The SQL sent to PostgreSQL: the two columns used, and the filter.
    let sent = plan
        .lines()
        .find(|l| l.contains("SqlExec sql="))
        .unwrap_or_else(|| panic!("no query to PostgreSQL in the plan:\n{plan}"));
    assert!(
        sent.contains("WHERE") && sent.contains("active") && !sent.contains("balance"),
        "the filter is not pushed down, or every column is read: {sent}"
    );

    // `pengine sources` shows the same: the server without a secret, the table, the SQL sent.
    let mut sources = pengine();
    sources.arg("sources").arg(&mapping);
    with_vars(&mut sources);
    let shown = stdout(&run_ok(&mut sources));
    let sends = shown
        .lines()
        .find(|l| l.contains("sends:"))
        .unwrap_or_else(|| panic!("no SQL shown for the database table:\n{shown}"));
    assert!(
        sends.contains("WHERE") && sends.contains("active") && !sends.contains("balance"),
        "{shown}"
    );
    assert!(
        shown.contains("table:      public.customers")
            && shown.contains("POSTGRES at postgres://reader@"),
        "{shown}"
    );
    assert!(!shown.contains(READER_PASSWORD), "{shown}");
    let mut json = pengine();
    json.arg("sources").arg(&mapping).arg("--json");
    with_vars(&mut json);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&run_ok(&mut json))).unwrap();
    let table = listed
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "c"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(table["database"]["table"], "public.customers", "{listed}");
    assert_eq!(
        table["database"]["sends"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

#[test]
fn logins_come_from_pgpassword_or_a_password_file_and_failures_name_table_and_host() {
    let pg = crm();
    let dir = tempfile::tempdir().unwrap();
    let host = format!("127.0.0.1:{}", pg.server.port);

    // A wrong password: exit 5, the table and the host named, no password shown.
    let err = run_fails(&mut run_users(&pg, dir.path(), Some("wrong-pw")), 5);
    assert!(err.contains("table c") && err.contains(&host), "{err}");
    assert!(
        !err.contains("wrong-pw") && !err.contains(READER_PASSWORD),
        "{err}"
    );
    assert!(!dir.path().join("out/users.current.json").exists());

    // A password file (PGPASSFILE), matched by host, port, database and user.
    let pgpass = dir.path().join("pgpass");
    write(
        &pgpass,
        format!(
            "other:5432:crm:reader:nope\n127.0.0.1:{}:crm:reader:{READER_PASSWORD}\n",
            pg.server.port
        ),
    );
    let mut cmd = run_users(&pg, dir.path(), None);
    cmd.env("PGPASSFILE", &pgpass);
    run_ok(&mut cmd);
    assert_eq!(read_dataset(&dir.path().join("out/users")).rows.len(), 2);

    // A connection service (PGSERVICE, PGSERVICEFILE) gives the server, user, database and
    // password: the LOCATION can be just `postgres:///`.
    let services = dir.path().join("pg_service.conf");
    write(
        &services,
        format!(
            "[other]\nhost=nowhere\n[crm]\nhost=127.0.0.1\nport={}\ndbname=crm\nuser=reader\n\
             password={READER_PASSWORD}\nsslmode=disable\n",
            pg.server.port
        ),
    );
    let mut cmd = run_mapping(
        &users_mapping(dir.path()),
        "pg=postgres:///",
        dir.path().join("out"),
        &["--no-insights"],
    );
    cmd.env_remove("PGPASSWORD")
        .env("PGPASSFILE", dir.path().join("no-such-pgpass"))
        .env("PGSERVICEFILE", &services)
        .env("PGSERVICE", "crm");
    run_ok(&mut cmd);
    assert_eq!(read_dataset(&dir.path().join("out/users")).rows.len(), 2);
    // A service that is not in the file is a clear error.
    let err = run_fails(cmd.env("PGSERVICE", "crn"), 3);
    assert!(
        err.contains("'crn'") && err.contains("pg_service.conf"),
        "{err}"
    );

    // A password in the mapping's LOCATION is refused before connecting, and not echoed.
    let location = pg
        .location("reader", "crm")
        .replace("reader@", &format!("reader:{READER_PASSWORD}@"));
    let mut cmd = run_mapping(
        &users_mapping(dir.path()),
        &format!("pg={location}"),
        dir.path().join("out"),
        &[],
    );
    let err = run_fails(&mut cmd, 3);
    assert!(
        err.contains("PGPASSWORD") && !err.contains(READER_PASSWORD),
        "{err}"
    );

    // A table that does not exist, and a server that is not there: exit 5, named.
    let mapping = dir.path().join("users.sql");
    let text = std::fs::read_to_string(&mapping)
        .unwrap()
        .replace("public.customers", "public.custmers");
    write(&mapping, text);
    let err = run_fails(
        run_mapping(
            &mapping,
            &format!("pg={}", pg.location("reader", "crm")),
            dir.path().join("out"),
            &[],
        )
        .env("PGPASSWORD", READER_PASSWORD),
        5,
    );
    assert!(err.contains("custmers") && err.contains(&host), "{err}");
    let nowhere = format!(
        "postgres://reader@127.0.0.1:{}/crm?sslmode=disable",
        free_port()
    );
    let err = run_fails(
        run_mapping(
            &mapping,
            &format!("pg={nowhere}"),
            dir.path().join("out"),
            &[],
        )
        .env("PGPASSWORD", READER_PASSWORD),
        5,
    );
    assert!(
        err.contains("table c") && err.contains("cannot connect"),
        "{err}"
    );

    // Nothing any of these runs did changed the database.
    assert_nothing_written(&pg);
}

/// A SQLite file made with Python's sqlite3 module.
fn sqlite_file(path: &Path) {
    let script = format!(
        "import sqlite3\n\
         db = sqlite3.connect({path:?})\n\
         db.execute('CREATE TABLE profiles (id INTEGER PRIMARY KEY, age INTEGER, city TEXT)')\n\
         db.executemany('INSERT INTO profiles VALUES (?, ?, ?)', [(1, 34, 'Oslo'), (2, None, 'Lima')])\n\
         db.commit()\n",
        path = path.display().to_string()
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_sqlite_file_is_read_without_being_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crm.db");
    sqlite_file(&db);
    let before = std::fs::read(&db).unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE p STORED AS SQLITE LOCATION '${db}' OPTIONS ('table' 'profiles');\n\
         SELECT id AS user_id, age AS age, city AS city FROM p;\n",
    );
    let out = dir.path().join("out");
    run_ok(&mut run_mapping(
        &mapping,
        &format!("db={}", db.display()),
        &out,
        &["--no-insights"],
    ));
    let mut rows = read_dataset(&out.join("users")).rows;
    rows.sort();
    assert_eq!(rows, [vec!["1", "34", "Oslo"], vec!["2", "", "Lima"]]);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the SQLite file changed"
    );
    let beside: Vec<String> = file_names(dir.path())
        .into_iter()
        .filter(|f| f.starts_with("crm.db"))
        .collect();
    assert_eq!(beside, ["crm.db"], "journal files were made");

    // init knows a SQLite file by its header and profiles its tables, still without a change.
    let into = dir.path().join("project");
    let mut init = pengine();
    init.args(["init", "--source"])
        .arg(&db)
        .arg("--into")
        .arg(&into);
    let err = stderr(&run_ok(&mut init));
    assert!(
        err.contains("SQLITE table") && err.contains("validate: ok"),
        "{err}"
    );
    let users = std::fs::read_to_string(into.join("users.sql")).unwrap();
    assert!(
        users.contains("STORED AS SQLITE LOCATION '${profiles}'")
            && users.contains("OPTIONS ('table' 'profiles')"),
        "{users}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "init changed the SQLite file"
    );

    // A missing file is an error (exit 5), never a new empty database.
    let missing = dir.path().join("nope.db");
    let err = run_fails(
        &mut run_mapping(&mapping, &format!("db={}", missing.display()), &out, &[]),
        5,
    );
    assert!(
        err.contains("nope.db") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!missing.exists());
}

#[test]
fn a_mariadb_table_is_read_with_its_types_and_logins_from_mysql_pwd_or_an_option_file() {
    let db = crate::common::mariadb::MariaDb::start();
    db.sql(&format!(
        "CREATE DATABASE crm;
         CREATE TABLE crm.customers (id BIGINT PRIMARY KEY, signed_up DATETIME,
             balance DECIMAL(10,2), active BOOLEAN, tier ENUM('free', 'gold'));
         INSERT INTO crm.customers VALUES
             (9007199254740993, '2024-03-01 11:00:00', 12.50, TRUE, 'gold'),
             (2, NULL, 0.10, FALSE, 'free'),
             (3, '2024-03-02 00:00:00', 99.99, FALSE, 'gold');
         CREATE TABLE crm.seasons (id BIGINT, yr YEAR);
         CREATE USER 'reader'@'%' IDENTIFIED BY '{READER_PASSWORD}';
         GRANT SELECT ON crm.customers TO 'reader'@'%';
         GRANT SELECT ON crm.seasons TO 'reader'@'%';"
    ));
    let seeded = db.general_log().len();
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        // MySQL's BOOLEAN is TINYINT(1), read as a boolean as MySQL's clients do.
        "CREATE EXTERNAL TABLE c STORED AS MYSQL LOCATION '${db}' OPTIONS ('table' 'customers');\n\
         SELECT id AS user_id, signed_up AS signed_up, balance AS balance, active AS active, tier AS tier\n\
         FROM c WHERE active OR balance < 1;\n",
    );
    let out = dir.path().join("out");
    let run = |password: Option<&str>, option_file: Option<&Path>| {
        let mut cmd = run_mapping(
            &mapping,
            &format!("db={}", db.location("reader", "crm")),
            &out,
            &["--no-insights"],
        );
        cmd.env_remove("MYSQL_PWD")
            .env("MYSQL_OPTION_FILE", dir.path().join("no-such.cnf"));
        if let Some(password) = password {
            cmd.env("MYSQL_PWD", password);
        }
        if let Some(file) = option_file {
            cmd.env("MYSQL_OPTION_FILE", file);
        }
        cmd
    };
    run_ok(&mut run(Some(READER_PASSWORD), None));
    assert_customers_as_users(&out.join("users"));

    // A wrong password: exit 5, named, without the password; an option file's [client] works.
    let host = format!("127.0.0.1:{}", db.server.port);
    let err = run_fails(&mut run(Some("wrong-pw"), None), 5);
    assert!(err.contains("table c") && err.contains(&host), "{err}");
    assert!(
        !err.contains("wrong-pw") && !err.contains(READER_PASSWORD),
        "{err}"
    );
    let cnf = dir.path().join("my.cnf");
    write(&cnf, format!("[client]\npassword=\"{READER_PASSWORD}\"\n"));
    run_ok(&mut run(None, Some(&cnf)));

    // `pengine sources` names the table and server, types the BOOLEAN column as one, and shows
    // what the query sends: the filter on the boolean is applied after reading, not sent.
    let mut sources = pengine();
    sources
        .arg("sources")
        .arg(&mapping)
        .args(["--var", &format!("db={}", db.location("reader", "crm"))])
        .env("MYSQL_PWD", READER_PASSWORD);
    let shown = stdout(&run_ok(&mut sources));
    assert!(
        shown.contains(&format!("MYSQL at mysql://reader@{host}/crm"))
            && shown.contains("table:      customers"),
        "{shown}"
    );
    let active = shown
        .lines()
        .find(|l| l.trim_start().starts_with("active"))
        .unwrap();
    assert!(active.contains("Boolean"), "{shown}");
    let sends = shown.lines().find(|l| l.contains("sends:")).unwrap();
    assert!(
        sends.contains("SELECT") && sends.contains("balance") && !sends.contains("WHERE"),
        "{shown}"
    );

    // `pengine sources URL` lists the database's tables.
    let mut listed = pengine();
    listed
        .args(["sources", &db.location("reader", "crm")])
        .env("MYSQL_PWD", READER_PASSWORD);
    let shown = stdout(&run_ok(&mut listed));
    assert!(
        shown.contains("table:      customers") && shown.contains("Boolean"),
        "{shown}"
    );
    // A table the reader cannot take is listed as skipped, with why.
    assert!(
        shown.contains("skipped mysql://reader@") && shown.contains("'yr'"),
        "{shown}"
    );

    // A column type the reader has no mapping for: named, with what to do.
    let seasons = dir.path().join("seasons.sql");
    write(
        &seasons,
        "-- pengine: dataset = users\n\
         CREATE EXTERNAL TABLE s STORED AS MYSQL LOCATION '${db}' OPTIONS ('table' 'seasons');\n\
         SELECT id AS user_id, CAST(id AS VARCHAR) AS tag FROM s;\n",
    );
    let mut cmd = run_mapping(
        &seasons,
        &format!("db={}", db.location("reader", "crm")),
        dir.path().join("seasons-out"),
        &[],
    );
    let err = run_fails(cmd.env("MYSQL_PWD", READER_PASSWORD), 5);
    assert!(
        err.contains("table s") && err.contains("'yr'") && err.contains("view of the table"),
        "{err}"
    );

    // A query: its own filter, then the mapping's filter (pushed down) and limit.
    let query = dir.path().join("query.sql");
    let run_query = |text: &str, select: &str| {
        write(
            &query,
            format!(
                "-- pengine: dataset = users\n\
                 CREATE EXTERNAL TABLE q STORED AS MYSQL LOCATION '${{db}}' OPTIONS ('query' '{}');\n{select}\n",
                text.replace('\'', "''")
            ),
        );
        let mut cmd = run_mapping(
            &query,
            &format!("db={}", db.location("reader", "crm")),
            dir.path().join("query-out"),
            &["--no-insights"],
        );
        cmd.env("MYSQL_PWD", READER_PASSWORD);
        cmd
    };
    run_ok(&mut run_query(
        "SELECT id, CAST(tier AS CHAR) AS tier, balance FROM customers WHERE balance < 50 ORDER BY id LIMIT 10",
        "SELECT id AS user_id, tier AS tier, balance AS balance FROM q WHERE tier = 'gold';",
    ));
    assert_eq!(
        read_dataset(&dir.path().join("query-out/users")).rows,
        [vec!["9007199254740993", "gold", "12.5"]]
    );
    // A mapping filter whose text holds a double quote is applied by pengine, not sent to MySQL
    // (whose reader would delete the quote): no customer's tier is `go"ld`.
    run_ok(&mut run_query(
        "SELECT id, CAST(tier AS CHAR) AS tier FROM customers",
        "SELECT id AS user_id, tier AS tier FROM q WHERE tier = 'go\"ld' OR tier = 'free';",
    ));
    assert_eq!(
        read_dataset(&dir.path().join("query-out/users")).rows,
        [vec!["2", "free"]]
    );
    for (text, says) in [
        ("DELETE FROM customers", "one SELECT"),
        (
            "SELECT id FROM customers WHERE tier = \"gold\"",
            "double quote",
        ),
    ] {
        let err = run_fails(
            &mut run_query(text, "SELECT id AS user_id, id AS n FROM q;"),
            3,
        );
        assert!(
            err.contains("table q") && err.contains(says),
            "{text}: {err}"
        );
    }

    // OPTIONS ('tinyint1' 'number') keeps MySQL's numbers.
    let numbers = dir.path().join("numbers.sql");
    write(
        &numbers,
        "-- pengine: dataset = users\n\
         CREATE EXTERNAL TABLE c STORED AS MYSQL LOCATION '${db}' OPTIONS ('table' 'customers', 'tinyint1' 'number');\n\
         SELECT id AS user_id, active + 40 AS flag FROM c WHERE id = 9007199254740993;\n",
    );
    let mut cmd = run_mapping(
        &numbers,
        &format!("db={}", db.location("reader", "crm")),
        dir.path().join("numbers-out"),
        &["--no-insights"],
    );
    cmd.env("MYSQL_PWD", READER_PASSWORD);
    run_ok(&mut cmd);
    let rows = read_dataset(&dir.path().join("numbers-out/users")).rows;
    assert_eq!(rows, [vec!["9007199254740993", "41"]]);

    // Nothing pengine sent changes data or schema.
    let log = db.general_log();
    let sent = &log[seeded..];
    for word in [
        "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "REPLACE", "TRUNCATE",
    ] {
        let changed = sent.lines().filter(|l| l.contains("Query")).any(|l| {
            l.to_uppercase().contains(&format!("\t{word} "))
                || l.to_uppercase().contains(&format!("QUERY\t{word}"))
        });
        assert!(!changed, "pengine sent {word}:\n{sent}");
    }
    assert!(
        sent.contains("customers"),
        "the log did not record pengine's reads:\n{sent}"
    );
    assert_eq!(db.sql("SELECT count(*) FROM crm.customers").trim(), "3");
}

#[test]
fn init_on_a_postgres_database_profiles_its_tables_and_writes_mappings_that_run() {
    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE shop");
    pg.psql(
        "shop",
        &format!(
            "CREATE TABLE products (product_id text PRIMARY KEY, category text,
                                    price numeric(10,2), created timestamptz);
             CREATE TABLE customers (customer_id bigint PRIMARY KEY, tier text,
                                     signed_up timestamptz);
             CREATE TABLE events (customer_id bigint, product_id text, event_type text,
                                  ts timestamptz);
             CREATE TABLE payroll (employee text, salary numeric);
             INSERT INTO products SELECT 'p' || i, CASE WHEN i % 2 = 0 THEN 'shoes' ELSE 'hats' END,
                    i * 1.25, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 day'
               FROM generate_series(1, 40) i;
             INSERT INTO customers SELECT i, CASE WHEN i % 3 = 0 THEN 'gold' ELSE 'free' END,
                    timestamptz '2023-06-01 00:00:00+00' + i * interval '1 hour'
               FROM generate_series(1, 30) i;
             INSERT INTO events SELECT 1 + i % 30, 'p' || (1 + i % 40),
                    CASE WHEN i % 4 = 0 THEN 'purchase' ELSE 'view' END,
                    timestamptz '2024-03-01 00:00:00+00' + i * interval '1 minute'
               FROM generate_series(1, 500) i;
             CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}';
             GRANT SELECT ON products, customers, events TO reader;"
        ),
    );
    let url = pg.location("reader", "shop");
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("project");
    let mut init = pengine();
    init.args(["init", "--source", &url, "--json", "--into"])
        .arg(&into)
        .env("PGPASSWORD", READER_PASSWORD);
    let output = run_ok(&mut init);
    let err = stderr(&output);
    // Each table the user may read is a source; the one it may not (payroll) is not listed.
    assert!(!err.contains("payroll"), "{err}");
    assert!(err.matches("validate: ok").count() == 3, "{err}");
    let items = std::fs::read_to_string(into.join("items.sql")).unwrap();
    assert!(
        items.contains("STORED AS POSTGRES LOCATION '${products}'")
            && items.contains("OPTIONS ('table' 'public.products')"),
        "{items}"
    );
    let interactions = std::fs::read_to_string(into.join("interactions.sql")).unwrap();
    assert!(interactions.contains("'public.events'"), "{interactions}");
    let users = std::fs::read_to_string(into.join("users.sql")).unwrap();
    assert!(users.contains("'public.customers'"), "{users}");
    let vars = std::fs::read_to_string(into.join("pengine.toml")).unwrap();
    assert!(
        vars.contains(&url) && !vars.contains(READER_PASSWORD),
        "{vars}"
    );

    // The written files run, every row of each table accounted for.
    let out = dir.path().join("out");
    let mut run = pengine();
    run.arg("run")
        .arg(&into)
        .args(["--no-progress", "--no-insights", "-o"])
        .arg(&out)
        .env("PGPASSWORD", READER_PASSWORD);
    run_ok(&mut run);
    assert_eq!(read_dataset(&out.join("items")).rows.len(), 40);
    assert_eq!(read_dataset(&out.join("users")).rows.len(), 30);
    assert_eq!(read_dataset(&out.join("interactions")).rows.len(), 500);

    // `pengine sources URL` describes the same tables.
    let mut sources = pengine();
    sources
        .args(["sources", &url])
        .env("PGPASSWORD", READER_PASSWORD);
    let shown = stdout(&run_ok(&mut sources));
    for table in ["public.products", "public.customers", "public.events"] {
        assert!(shown.contains(&format!("table:      {table}")), "{shown}");
    }
    assert!(!shown.contains("payroll"), "{shown}");

    // Nothing but the seeding changed the database.
    let others: Vec<String> = pg
        .logged_changes()
        .into_iter()
        .filter(|l| !l.starts_with(&format!("{ADMIN}:")))
        .collect();
    assert!(others.is_empty(), "statements that change data: {others:?}");
}

/// Rows of the table larger than the memory limit, and the bytes of text each holds.
const LARGE_ROWS: usize = 800_000;
const LARGE_TEXT: usize = 448;

#[test]
fn a_postgres_table_larger_than_the_memory_limit_streams_through_it() {
    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE big");
    // The same rows twice: a large table, and a small one for the process's own footprint.
    pg.psql(
        "big",
        &format!(
            "CREATE TABLE products AS SELECT i::bigint AS id, repeat(md5(i::text), {}) AS bio,
                    CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END AS segment
               FROM generate_series(1, {LARGE_ROWS}) i;
             CREATE TABLE few_products AS SELECT * FROM products WHERE id <= 1000;
             CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}';
             GRANT SELECT ON products, few_products TO reader;",
            LARGE_TEXT / 32
        ),
    );
    let table_bytes: u64 = pg
        .psql("big", "SELECT sum(octet_length(bio))::bigint FROM products")
        .trim()
        .parse()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |table: &str| {
        let mapping = dir.path().join("items.sql");
        write(
            &mapping,
            format!(
                "-- pengine: textual = DESCRIPTION\n\
                 CREATE EXTERNAL TABLE p STORED AS POSTGRES LOCATION '${{pg}}' OPTIONS ('table' '{table}');\n\
                 SELECT id AS item_id, bio AS description, segment AS category FROM p;\n"
            ),
        );
        let mut cmd = run_mapping(
            &mapping,
            &format!("pg={}", pg.location("reader", "big")),
            dir.path().join("out"),
            &["--memory-limit", "32MiB", "--json"],
        );
        cmd.env("PGPASSWORD", READER_PASSWORD);
        let (output, peak) = run_ok_peak_rss(&mut cmd);
        (stdout_json(&output), peak)
    };
    let (report, footprint) = run("few_products");
    assert_eq!(report["rows"]["written"], 1000, "{report}");
    let (report, peak) = run("products");
    assert_eq!(report["rows"]["written"], LARGE_ROWS, "{report}");
    eprintln!(
        "peak resident memory: {} MiB for a table of {} MiB, {} MiB for 1000 of its rows",
        peak >> 20,
        table_bytes >> 20,
        footprint >> 20
    );
    // The table streams: the process grows by a fraction of it, not by it.
    assert!(
        table_bytes > 300 << 20 && peak.saturating_sub(footprint) < table_bytes / 4,
        "peak resident memory {} MiB for a table of {} MiB ({} MiB for 1000 rows)",
        peak >> 20,
        table_bytes >> 20,
        footprint >> 20
    );
}

#[test]
fn a_postgres_query_is_read_as_a_table_and_only_ever_reads() {
    let pg = crm();
    pg.psql(
        "crm",
        "CREATE SEQUENCE ticket; GRANT USAGE, SELECT, UPDATE ON ticket TO reader;",
    );
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    let run = |query: &str, select: &str| {
        write(
            &mapping,
            format!(
                "CREATE EXTERNAL TABLE q STORED AS POSTGRES LOCATION '${{pg}}' OPTIONS ('query' '{}');\n{select}\n",
                query.replace('\'', "''")
            ),
        );
        let mut cmd = run_mapping(
            &mapping,
            &format!("pg={}", pg.location("reader", "crm")),
            dir.path().join("out"),
            &["--no-insights"],
        );
        cmd.env("PGPASSWORD", READER_PASSWORD);
        cmd
    };
    // The query's own filter and limit, then the mapping's filter (pushed down) and limit.
    let query = "SELECT id, tier::text AS tier, balance::float8 AS balance FROM customers \
                 WHERE balance < 50 ORDER BY id LIMIT 10";
    run_ok(&mut run(
        query,
        "SELECT id AS user_id, tier AS tier, balance AS balance FROM q WHERE tier = 'gold';",
    ));
    assert_eq!(
        read_dataset(&dir.path().join("out/users")).rows,
        [vec!["9007199254740993", "gold", "12.5"]]
    );
    run_ok(&mut run(
        query,
        "SELECT id AS user_id, tier AS tier FROM q ORDER BY id LIMIT 1;",
    ));
    assert_eq!(
        read_dataset(&dir.path().join("out/users")).rows,
        [vec!["2", "free"]]
    );
    let mut sources = pengine();
    sources
        .arg("sources")
        .arg(&mapping)
        .args(["--var", &format!("pg={}", pg.location("reader", "crm"))])
        .env("PGPASSWORD", READER_PASSWORD);
    let shown = stdout(&run_ok(&mut sources));
    assert!(
        shown.contains("table:      the query SELECT id, tier::text")
            && shown.contains("FROM (SELECT id, tier::text AS tier"),
        "{shown}"
    );

    // Not a single SELECT, a column type pengine does not take, a write hidden in a function.
    for (query, code, says) in [
        ("DELETE FROM customers", 3, "one SELECT"),
        ("SELECT 1 AS id; DROP TABLE customers", 3, "one SELECT"),
        ("SELECT id FROM customers FOR UPDATE", 3, "locks rows"),
        ("SELECT id, balance FROM customers", 3, "balance::float8"),
        (
            "SELECT id, setval('ticket', 42) AS n FROM customers",
            5,
            "read-only transaction",
        ),
    ] {
        let select = "SELECT id AS user_id, CAST(id AS VARCHAR) AS tag FROM q;";
        let err = run_fails(&mut run(query, select), code);
        assert!(
            err.contains("table q") && err.contains(says),
            "{query}: {err}"
        );
        assert!(!err.contains(READER_PASSWORD), "{err}");
    }
    assert_eq!(pg.psql("crm", "SELECT last_value FROM ticket").trim(), "1");
    assert_nothing_written(&pg);
}

#[test]
fn columns_read_wrongly_are_refused_with_the_cast_and_the_rest_of_the_table_reads() {
    let pg = crm();
    pg.psql(
        "crm",
        "CREATE TABLE accounts (id bigint, amount money, addr inet, doc jsonb, tags text[]);
         INSERT INTO accounts VALUES (7, 12.5, '10.0.0.1', '{\"plan\": \"gold\"}', ARRAY['x', 'y']);
         GRANT SELECT ON accounts TO reader;",
    );
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    let run = |options: &str, select: &str| {
        write(
            &mapping,
            format!(
                "CREATE EXTERNAL TABLE a STORED AS POSTGRES LOCATION '${{pg}}' OPTIONS ({options});\n{select}\n"
            ),
        );
        let mut cmd = run_mapping(
            &mapping,
            &format!("pg={}", pg.location("reader", "crm")),
            dir.path().join("out"),
            &["--no-insights", "--json"],
        );
        cmd.env("PGPASSWORD", READER_PASSWORD);
        cmd
    };
    let table = "'table' 'public.accounts'";
    // Columns that read right: jsonb as its text, a text array joined as Personalize's list.
    let output = run_ok(&mut run(
        table,
        "SELECT id AS user_id, doc AS doc, tags AS tags FROM a;",
    ));
    assert_eq!(
        read_dataset(&dir.path().join("out/users")).rows,
        [vec!["7", "{\"plan\": \"gold\"}", "x|y"]]
    );
    // Rows read from a database are accounted for like a file's.
    let report = stdout_json(&output);
    assert_eq!(report["rows"]["read_from_sources"], 1, "{report}");
    assert_eq!(report["rows"]["measured"], true, "{report}");

    // money would arrive as cents, inet fails mid-scan: refused, naming column and cast.
    let err = run_fails(
        &mut run(table, "SELECT id AS user_id, amount AS amount FROM a;"),
        3,
    );
    assert!(
        err.contains("column amount") && err.contains("\"amount\"::numeric::float8"),
        "{err}"
    );
    let err = run_fails(
        &mut run(table, "SELECT id AS user_id, addr AS addr FROM a;"),
        3,
    );
    assert!(err.contains("\"addr\"::text"), "{err}");
    // The cast the message gives reads them.
    run_ok(&mut run(
        "'query' 'SELECT id, \"amount\"::numeric::float8 AS amount, \"addr\"::text AS addr FROM public.accounts'",
        "SELECT id AS user_id, amount AS amount, addr AS addr FROM a;",
    ));
    assert_eq!(
        read_dataset(&dir.path().join("out/users")).rows,
        // inet as text keeps its mask, as PostgreSQL writes it.
        [vec!["7", "12.5", "10.0.0.1/32"]]
    );
}

#[test]
fn tls_is_verified_against_the_certificate_the_location_names() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("server");
    std::fs::create_dir(&certs).unwrap();
    let cert = certs.join("server.crt");
    let pg = PgServer::start_tls(&cert);
    pg.psql("postgres", "CREATE DATABASE crm");
    pg.psql(
        "crm",
        &format!(
            "CREATE TABLE customers (id bigint, tier text);
             INSERT INTO customers VALUES (1, 'gold'), (2, 'free');
             CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}';
             GRANT SELECT ON customers TO reader;"
        ),
    );
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE c STORED AS POSTGRES LOCATION '${pg}' OPTIONS ('table' 'public.customers');\n\
         SELECT id AS user_id, tier AS tier FROM c;\n",
    );
    let run = |root: &Path| {
        let location = format!(
            "postgres://reader@127.0.0.1:{}/crm?sslmode=verify-full&sslrootcert={}",
            pg.server.port,
            root.display()
        );
        let mut cmd = run_mapping(
            &mapping,
            &format!("pg={location}"),
            dir.path().join("out"),
            &["--no-insights"],
        );
        cmd.env("PGPASSWORD", READER_PASSWORD);
        cmd
    };
    run_ok(&mut run(&cert));
    assert_eq!(read_dataset(&dir.path().join("out/users")).rows.len(), 2);
    assert!(
        pg.log()
            .lines()
            .any(|l| l.contains("user=reader database=crm") && l.contains("SSL enabled")),
        "pengine's connections did not use TLS:\n{}",
        pg.log()
    );

    // A certificate the server's is not signed by: the connection is refused (exit 5).
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(other.join("k"))
        .arg("-out")
        .arg(other.join("ca.crt"))
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let err = run_fails(&mut run(&other.join("ca.crt")), 5);
    assert!(
        err.contains("table c") && err.contains("cannot connect"),
        "{err}"
    );
}

#[test]
fn sigterm_while_a_database_table_streams_publishes_nothing_and_closes_the_connection() {
    let pg = crm();
    pg.psql(
        "crm",
        "CREATE TABLE visits AS SELECT i::bigint AS id, 'v' || i AS page FROM generate_series(1, 200000) i;
         GRANT SELECT ON visits TO reader;",
    );
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE v STORED AS POSTGRES LOCATION '${pg}' OPTIONS ('table' 'public.visits');\n\
         SELECT id AS user_id, page AS page FROM v;\n",
    );
    let out = dir.path().join("out");
    let mut cmd = run_mapping(
        &mapping,
        &format!("pg={}", pg.location("reader", "crm")),
        &out,
        &["--no-insights"],
    );
    cmd.env("PGPASSWORD", READER_PASSWORD);
    // Stopped after its first batch is written, with the rest of the table still streaming.
    let output = signalled_at(&mut cmd, "while-writing", "TERM", dir.path());
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(!out.join("users.current.json").exists());
    assert!(!out.join("users").exists());
    // The server sees pengine's sessions end with the process.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = pg.psql(
            "crm",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pengine'",
        );
        if left.trim() == "0" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left} sessions left");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_nothing_written(&pg);
}
