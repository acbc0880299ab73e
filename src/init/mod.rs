//! `pengine init`: the crawler and script generator. It crawls each source (format, compression,
//! folder layout, schema, a profile of the values), guesses which dataset type each source feeds
//! and what each column is, and writes runnable, commented mapping files plus a `pengine.toml`
//! with the source locations. Every guess is stated in the files; open decisions say CHECK.
//! Nothing is overwritten without `--force`, and the written files are validated at once.

pub mod draft;
pub mod render;
pub mod roles;
pub mod unnest;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::crawl::{self, ColumnProfile, Detected};
use crate::engine::EngineOptions;
use crate::error::{Error, Result};
use crate::mapping::{MappingFile, VARS_FILE, Vars};
use crate::personalize::DatasetType;
use crate::run::RunOptions;
use crate::validate::StaticResult;

pub struct InitOptions {
    pub sources: Vec<String>,
    pub into: PathBuf,
    pub force: bool,
    pub engine: EngineOptions,
}

/// One crawled source and what init made of it.
#[derive(Debug, Serialize)]
pub struct FoundSource {
    pub table: String,
    pub variable: String,
    pub detected: Detected,
    /// The nested array of items read one row per element, when the records hold one.
    pub unnest: Option<unnest::Unnest>,
    /// The columns the mapping selects from: the table's, or the unnested view's.
    pub columns: Vec<ColumnProfile>,
    /// The dataset type it most likely feeds, and why.
    pub guess: Option<DatasetType>,
    pub reason: String,
    #[serde(skip)]
    score: u32,
    /// The dataset type it was used for (one source per type).
    pub used_for: Option<DatasetType>,
}

impl FoundSource {
    fn text(&self) -> render::SourceText<'_> {
        render::SourceText {
            table: &self.table,
            variable: &self.variable,
            detected: &self.detected,
            unnest: self.unnest.as_ref(),
        }
    }
}

/// A mapping file init wrote, or could not write.
#[derive(Debug, Serialize)]
pub struct Written {
    pub file: String,
    pub dataset: DatasetType,
    pub source: String,
    pub draft: Option<draft::Draft>,
    /// Why no file was written for this dataset.
    pub skipped: Option<String>,
    pub validation: Option<StaticResult>,
}

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub sources: Vec<FoundSource>,
    pub files: Vec<Written>,
    pub vars_file: String,
    /// Files under the sources that fit no table, with why.
    pub skipped: Vec<(String, String)>,
}

impl InitReport {
    /// What init found and guessed, for a person.
    pub fn human(&self) -> String {
        let mut out = format!("crawled {} source(s):\n", self.sources.len());
        for (file, why) in &self.skipped {
            out.push_str(&format!("  skipped {file}: {why}\n"));
        }
        for s in &self.sources {
            let d = &s.detected;
            if d.format.is_database() {
                out.push_str(&format!(
                    "  {} <- {}\n    {} table; {} column(s)\n",
                    s.table,
                    d.location,
                    d.format.sql_name(),
                    s.columns.len()
                ));
            } else {
                out.push_str(&format!(
                    "  {} <- {}\n    {} {}, {} file(s), {}; {}; {} column(s)\n",
                    s.table,
                    d.location,
                    d.format.sql_name(),
                    d.compression
                        .iter()
                        .map(|(c, n)| format!("{c}:{n}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    d.files,
                    bytesize::ByteSize(d.bytes),
                    d.layout.describe(),
                    s.columns.len()
                ));
            }
            if let Some(u) = &s.unnest {
                out.push_str(&format!(
                    "    {} holds items: one row per element ({} in the view {})\n",
                    u.path, u.element, u.view
                ));
            }
            if let Some((label, guessed)) = d.encoding {
                let how = if guessed {
                    "guessed: not UTF-8"
                } else {
                    "byte-order mark"
                };
                out.push_str(&format!("    encoding {label} ({how})\n"));
            }
            match (s.guess, s.used_for) {
                (Some(g), Some(_)) => {
                    out.push_str(&format!("    feeds {g}: {}\n", s.reason));
                }
                (Some(g), None) => out.push_str(&format!(
                    "    looks like {g} ({}), but another source fits better: not used\n",
                    s.reason
                )),
                (None, _) => out.push_str(&format!(
                    "    dataset type unknown ({}): not used; write its mapping by hand\n",
                    s.reason
                )),
            }
        }
        for w in &self.files {
            if let Some(reason) = &w.skipped {
                out.push_str(&format!(
                    "not written: {} from {}: {reason}\n",
                    w.dataset, w.source
                ));
                continue;
            }
            out.push_str(&format!(
                "wrote {} ({} from {})\n",
                w.file, w.dataset, w.source
            ));
            if let Some(draft) = &w.draft {
                for c in &draft.columns {
                    out.push_str(&format!(
                        "    {:<20} <- {}\n",
                        c.alias.to_uppercase(),
                        c.sql
                    ));
                }
                for check in &draft.checks {
                    out.push_str(&format!("    CHECK: {check}\n"));
                }
            }
            match &w.validation {
                Some(v) if v.ok => out.push_str("    validate: ok\n"),
                Some(v) => out.push_str(&format!(
                    "    validate: FAILED: {}\n",
                    v.error.as_deref().unwrap_or("")
                )),
                None => {}
            }
        }
        out.push_str(&format!("wrote {}\n", self.vars_file));
        out
    }

    /// Whether every file written validates.
    /// Mapping files written (datasets skipped, e.g. for an existing file, not counted).
    pub fn mappings_written(&self) -> usize {
        self.files.iter().filter(|w| w.draft.is_some()).count()
    }

    pub fn all_valid(&self) -> bool {
        self.files
            .iter()
            .filter_map(|w| w.validation.as_ref())
            .all(|v| v.ok)
    }
}

/// Crawls the sources, writes the mapping files and `pengine.toml`, and validates them.
pub async fn init(options: &InitOptions) -> Result<InitReport> {
    let mut sources = Vec::new();
    let mut names = BTreeSet::new();
    let mut skipped = Vec::new();
    let stores = crate::store::StoreRegistry::new();
    for location in &options.sources {
        // A database: each table its user may read is a source.
        if let Some(tables) = crawl::database::tables(location).await? {
            for detected in tables {
                let location = detected.location.clone();
                // A table the reader cannot take is skipped, with why; the others are drafted.
                match profile_source(detected, &options.engine, &mut names).await {
                    Ok(source) => sources.push(source),
                    Err(Error::Database(why)) => skipped.push((location, why)),
                    Err(e) => return Err(e),
                }
            }
            continue;
        }
        // An export root holds several tables: each is crawled as if given on its own.
        let found = crawl::tables::tables(location, &stores).await?;
        skipped.extend(found.skipped);
        for table in &found.locations {
            sources.push(crawl_source(table, &options.engine, &mut names).await?);
        }
    }
    assign_datasets(&mut sources);

    let mut files = Vec::new();
    let catalog = sources
        .iter()
        .find(|s| s.used_for == Some(DatasetType::Items));
    for source in sources.iter().filter(|s| s.used_for.is_some()) {
        let dataset = source.used_for.expect("filtered");
        let file = options.into.join(format!("{dataset}.sql"));
        let mut written = Written {
            file: file.display().to_string(),
            dataset,
            source: source.detected.location.clone(),
            draft: None,
            skipped: None,
            validation: None,
        };
        match draft::draft(dataset, &source.columns) {
            Ok(d) => written.draft = Some(d),
            Err(reason) => written.skipped = Some(reason),
        }
        files.push((written, source, catalog_hint(dataset, catalog)));
    }

    let vars_path = options.into.join(VARS_FILE);
    let targets: Vec<PathBuf> = files
        .iter()
        .filter(|(w, _, _)| w.draft.is_some())
        .map(|(w, _, _)| PathBuf::from(&w.file))
        .chain([vars_path.clone()])
        .collect();
    refuse_overwrite(&targets, options.force)?;
    std::fs::create_dir_all(&options.into)
        .map_err(|e| Error::io(format!("cannot create {}", options.into.display()), e))?;

    for (written, source, hint) in &files {
        let Some(d) = &written.draft else { continue };
        let text = render::mapping_file(
            d,
            &source.text(),
            hint.as_ref()
                .map(|(catalog, item_expr)| render::CatalogHint {
                    source: catalog.text(),
                    item_expr,
                })
                .as_ref(),
        );
        write_file(Path::new(&written.file), &text)?;
    }
    let mut vars: Vec<(String, String)> = sources
        .iter()
        .map(|s| (s.variable.clone(), s.detected.table_location.clone()))
        .collect();
    // With --force and fewer sources: the variables the other mapping files still use are kept,
    // or those files would stop running.
    let used = crate::mapping::variables_used_in(&options.into)?;
    for (name, value) in crate::mapping::folder_vars(&options.into)? {
        if used.contains(&name) && !vars.iter().any(|(n, _)| *n == name) {
            vars.push((name, value));
        }
    }
    write_file(&vars_path, &render::vars_file(&vars))?;

    let run_options = RunOptions {
        progress: false,
        engine: options.engine.clone(),
        ..RunOptions::default()
    };
    let mut out = Vec::new();
    for (mut written, _, _) in files {
        if written.draft.is_some() {
            let result = match MappingFile::load(Path::new(&written.file), &Vars::new()) {
                Ok(mapping) => crate::validate::check_mapping(&mapping, &run_options).await,
                Err(e) => StaticResult::failed(written.file.clone(), Some(written.dataset), e),
            };
            written.validation = Some(result);
        }
        out.push(written);
    }
    Ok(InitReport {
        sources,
        files: out,
        vars_file: vars_path.display().to_string(),
        skipped,
    })
}

/// For Interactions: the catalog source and its item id expression, when one was found.
fn catalog_hint(
    dataset: DatasetType,
    catalog: Option<&FoundSource>,
) -> Option<(&FoundSource, String)> {
    if dataset != DatasetType::Interactions {
        return None;
    }
    let catalog = catalog?;
    let (i, _) = roles::find(
        &catalog.columns,
        roles::Role::ItemId,
        DatasetType::Items,
        &[],
    )?;
    Some((catalog, catalog.columns[i].expr.clone()))
}

async fn crawl_source(
    location: &str,
    engine: &EngineOptions,
    names: &mut BTreeSet<String>,
) -> Result<FoundSource> {
    let stores = std::sync::Arc::new(crate::store::StoreRegistry::new());
    let detected = crawl::detect(location, &stores).await?;
    let registered = crawl::register_detected(detected, stores, engine, |d| unique(d, names));
    found_source(registered.await?, location, names).await
}

/// Profiles a table a crawl found elsewhere (a database's).
async fn profile_source(
    detected: Detected,
    engine: &EngineOptions,
    names: &mut BTreeSet<String>,
) -> Result<FoundSource> {
    let location = detected.location.clone();
    let stores = std::sync::Arc::new(crate::store::StoreRegistry::new());
    let registered = crawl::register_detected(detected, stores, engine, |d| unique(d, names));
    found_source(registered.await?, &location, names).await
}

/// `detected`, or `detected_2`, ...: a table name no other source has.
fn unique(detected: &str, names: &mut BTreeSet<String>) -> String {
    let mut table = detected.to_string();
    let mut n = 2;
    while !names.insert(table.clone()) {
        table = format!("{detected}_{n}");
        n += 1;
    }
    table
}

async fn found_source(
    registered: crawl::Registered,
    location: &str,
    names: &mut BTreeSet<String>,
) -> Result<FoundSource> {
    let crawl::Registered {
        ctx,
        detected,
        table,
    } = registered;
    let sampling = |e: Error| Error::Data(format!("{location}: sampling failed: {e}"));
    let mut columns = crawl::profile_table(&ctx, &table).await.map_err(sampling)?;
    let mut unnest = unnest::find(&table, &columns);
    if let Some(u) = &mut unnest {
        while !names.insert(u.view.clone()) {
            u.view.push('_');
        }
        // The element's fields decide the dataset type and the columns, as the mapping reads them.
        let view = async { ctx.sql(&u.view_sql(&table)).await?.collect().await };
        view.await.map_err(|e| sampling(e.into()))?;
        columns = crawl::profile_table(&ctx, &u.view)
            .await
            .map_err(sampling)?;
    }
    let (guess, score, reason) = roles::guess_dataset(&table, &columns);
    Ok(FoundSource {
        variable: table.clone(),
        table,
        detected,
        unnest,
        columns,
        guess,
        reason,
        score,
        used_for: None,
    })
}

/// Each dataset type goes to the source that fits it best.
fn assign_datasets(sources: &mut [FoundSource]) {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sources[i].score));
    let mut taken = Vec::new();
    for i in order {
        if let Some(guess) = sources[i].guess
            && !taken.contains(&guess)
        {
            taken.push(guess);
            sources[i].used_for = Some(guess);
        }
    }
}

fn refuse_overwrite(targets: &[PathBuf], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    let existing: Vec<String> = targets
        .iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if existing.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{} already exist(s); nothing was written. Give --force to replace, or --into \
             another folder",
            existing.join(", ")
        )))
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
