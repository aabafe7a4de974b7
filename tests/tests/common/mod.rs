#![allow(dead_code)] // each test file uses part of it
//! What "nothing in the store changed" means for the corpus tests: every row of every table of
//! the database (read on a second, read-only connection) and every file of the data folder
//! except the database's own, with its size and sha256.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use upn_core::digest::sha256_hex;

/// One table's rows, each as text, in rowid order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub rows: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub tables: Vec<Table>,
    /// Path (under the data folder), size and sha256 of every file but the database's.
    pub files: Vec<String>,
}

impl Snapshot {
    pub fn table(&self, name: &str) -> &[String] {
        self.tables
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.rows.as_slice())
            .unwrap_or_default()
    }

    /// The snapshot without these tables: what must not have changed when they may.
    pub fn without(&self, names: &[&str]) -> Snapshot {
        Snapshot {
            tables: self
                .tables
                .iter()
                .filter(|t| !names.contains(&t.name.as_str()))
                .cloned()
                .collect(),
            files: self.files.clone(),
        }
    }
}

pub fn snapshot(data_dir: &Path) -> Snapshot {
    let db = data_dir.join(upn_core::testing::store::DB_FILE_NAME);
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("a read-only connection");
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("table names");
    names.retain(|n| !n.starts_with("sqlite_"));
    let tables = names
        .into_iter()
        .map(|name| {
            let rows = rows(&conn, &name);
            Table { name, rows }
        })
        .collect();
    let mut files = Vec::new();
    list(data_dir, data_dir, &mut files);
    files.sort();
    Snapshot { tables, files }
}

fn rows(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
        .expect("select");
    let columns = stmt.column_count();
    let mut out = Vec::new();
    let mut rows = stmt.query([]).expect("query");
    while let Some(row) = rows.next().expect("row") {
        let cells: Vec<String> = (0..columns)
            .map(|i| match row.get_ref(i).expect("cell") {
                ValueRef::Null => "NULL".to_string(),
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(f) => format!("{f:?}"),
                ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                ValueRef::Blob(b) => format!("blob:{}:{}", b.len(), sha256_hex(b)),
            })
            .collect();
        out.push(cells.join("|"));
    }
    out
}

fn list(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if path.is_dir() {
            out.push(format!("{name}/"));
            list(root, &path, out);
        } else if !name.starts_with(upn_core::testing::store::DB_FILE_NAME)
            && !name.ends_with(".lock")
        {
            let bytes = std::fs::read(&path).unwrap_or_default();
            out.push(format!("{name} {} {}", bytes.len(), sha256_hex(&bytes)));
        }
    }
}
