//! A CSV file read into columns of cells, with missing cells recognised, each column's kind
//! inferred the way pandas' `read_csv` does, and fastai's `cont_cat_split`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Cell texts read as missing (pandas' common `na_values`): empty, `NA`, `N/A`, `NaN`, `null`, `None`.
pub const MISSING: [&str; 10] = [
    "", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A",
];

/// Whether a (trimmed) cell is a missing value.
pub fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell.trim())
}

// Each column becomes its own embedding or input of the model, and every batch runs through
// every one of them: a header wider than this is refused before any row is read.
/// The most columns a CSV file may have.
pub const MAX_COLUMNS: usize = 100_000;

/// What a column holds, as pandas would type it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnKind {
    /// Whole numbers, no missing cell (pandas `int64`).
    Int,
    /// Numbers, or whole numbers with missing cells (pandas `float64`).
    Float,
    /// `True`/`False` (pandas `bool`).
    Bool,
    /// Anything else (pandas `object`).
    Text,
}

/// A CSV file held as columns of cells (`None` = missing), with the line of every row.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it came from (named in every error).
    pub path: PathBuf,
    /// Column names, from the header.
    pub headers: Vec<String>,
    /// Cells by column, then row.
    pub columns: Vec<Vec<Option<String>>>,
    /// The 1-based line on which each row starts.
    pub lines: Vec<u64>,
}

impl Table {
    /// Reads `path` (UTF-8, a header row, fields separated by `delimiter`, quotes as RFC 4180).
    pub fn read(path: &Path, delimiter: u8) -> Result<Self> {
        let (file, _) = crate::io::open_regular(path).map_err(|e| Error::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(std::io::BufReader::new(file));
        let csv_err = |e: csv::Error| {
            let line = e.position().map(|p| p.line());
            let message = match e.kind() {
                csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".to_string(),
                _ => e.to_string(),
            };
            Error::table(path, line, None, message)
        };
        let header = reader.headers().map_err(csv_err)?;
        if header.len() > MAX_COLUMNS {
            return Err(Error::table(
                path,
                Some(1),
                None,
                format!(
                    "the header has {} columns; at most {MAX_COLUMNS} are supported (each column is a model input)",
                    header.len()
                ),
            ));
        }
        let headers: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
            return Err(Error::table(path, None, None, "empty file: no header row"));
        }
        let mut seen = HashSet::new();
        for h in &headers {
            if !seen.insert(h) {
                return Err(Error::table(
                    path,
                    Some(1),
                    Some(h),
                    "the header names this column twice",
                ));
            }
        }
        let mut columns = vec![Vec::new(); headers.len()];
        let mut lines = Vec::new();
        for record in reader.records() {
            let record = record.map_err(csv_err)?;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) {
                continue; // a blank line
            }
            if record.len() != headers.len() {
                return Err(Error::table(
                    path,
                    Some(line),
                    None,
                    format!(
                        "this row has {} fields, the header has {}",
                        record.len(),
                        headers.len()
                    ),
                ));
            }
            for (col, cell) in columns.iter_mut().zip(record.iter()) {
                col.push((!is_missing(cell)).then(|| cell.trim().to_string()));
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(Error::table(
                path,
                None,
                None,
                "no data rows after the header",
            ));
        }
        Ok(Self {
            path: path.into(),
            headers,
            columns,
            lines,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Index of column `name`, or an error listing the columns there are.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| self.no_column(name))
    }

    /// Indices of the columns `names`, through one index of the header (linear in the columns).
    pub fn columns_of(&self, names: &[String]) -> Result<Vec<usize>> {
        let index: HashMap<&str, usize> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.as_str(), i))
            .collect();
        names
            .iter()
            .map(|n| {
                index
                    .get(n.as_str())
                    .copied()
                    .ok_or_else(|| self.no_column(n))
            })
            .collect()
    }

    /// The error for a column `name` the header lacks, listing (the first 50 of) the columns.
    fn no_column(&self, name: &str) -> Error {
        const SHOWN: usize = 50;
        let mut list = self.headers[..self.headers.len().min(SHOWN)].join(", ");
        if self.headers.len() > SHOWN {
            list.push_str(&format!(", … ({} columns)", self.headers.len()));
        }
        Error::table(
            &self.path,
            Some(1),
            None,
            format!("no column named \"{name}\"; the columns are: {list}"),
        )
    }

    /// The kind of column `c`, inferred from its non-missing cells.
    pub fn kind(&self, c: usize) -> ColumnKind {
        infer_kind(&self.columns[c])
    }

    /// Number of distinct non-missing values in column `c`.
    pub fn n_unique(&self, c: usize) -> usize {
        self.columns[c]
            .iter()
            .flatten()
            .collect::<HashSet<_>>()
            .len()
    }

    /// Column `c` parsed as numbers (missing → `None`; so are `inf` and `-inf`, as pandas'
    /// `use_inf_as_na` reads them, so they are filled and flagged like any missing value and no
    /// infinity reaches the model); a cell that is not a number is an error naming its line and
    /// the column, used as `role`.
    pub fn numbers(&self, c: usize, role: &str) -> Result<Vec<Option<f64>>> {
        self.columns[c]
            .iter()
            .zip(&self.lines)
            .map(|(cell, &line)| match cell {
                None => Ok(None),
                Some(s) => parse_number(s)
                    .map(|v| v.is_finite().then_some(v))
                    .ok_or_else(|| {
                        Error::table(
                            &self.path,
                            Some(line),
                            Some(&self.headers[c]),
                            format!("\"{s}\" is not a number (the column is used as {role})"),
                        )
                    }),
            })
            .collect()
    }

    /// The rows `rows` of this table, in that order.
    pub fn select(&self, rows: &[usize]) -> Self {
        Self {
            path: self.path.clone(),
            headers: self.headers.clone(),
            columns: self
                .columns
                .iter()
                .map(|col| rows.iter().map(|&r| col[r].clone()).collect())
                .collect(),
            lines: rows.iter().map(|&r| self.lines[r]).collect(),
        }
    }
}

/// The data rows of `path` exactly as written (cells untrimmed, missing markers kept), in the
/// order [`Table::read`] reads them; for outputs that keep the user's input columns.
pub fn raw_rows(path: &Path, delimiter: u8) -> Result<Vec<csv::StringRecord>> {
    let (file, _) = crate::io::open_regular(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record
            .map_err(|e| Error::table(path, e.position().map(|p| p.line()), None, e.to_string()))?;
        if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push(record);
    }
    Ok(rows)
}

/// Parses a number as pandas does (`inf`/`-inf` included); `None` if it is not one.
pub fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// The kind pandas gives a column of these cells.
pub fn infer_kind(cells: &[Option<String>]) -> ColumnKind {
    let present: Vec<&str> = cells.iter().flatten().map(String::as_str).collect();
    let any_missing = present.len() < cells.len();
    if present.is_empty() {
        return ColumnKind::Float; // all missing: pandas reads float NaN
    }
    if present.iter().all(|s| s.parse::<i64>().is_ok()) {
        return if any_missing {
            ColumnKind::Float
        } else {
            ColumnKind::Int
        };
    }
    if present.iter().all(|s| parse_number(s).is_some()) {
        return ColumnKind::Float;
    }
    let is_bool = |s: &&str| matches!(*s, "True" | "False" | "true" | "false" | "TRUE" | "FALSE");
    if !any_missing && present.iter().all(is_bool) {
        return ColumnKind::Bool;
    }
    ColumnKind::Text
}

/// fastai's `cont_cat_split`: floats, and integers with more than `max_card` distinct values, are
/// continuous; everything else is categorical. Columns in `skip` (the target) are left out.
pub fn cont_cat_split(table: &Table, max_card: usize, skip: &[&str]) -> (Vec<String>, Vec<String>) {
    let skip: HashSet<&str> = skip.iter().copied().collect();
    let (mut cont, mut cat) = (Vec::new(), Vec::new());
    for (c, name) in table.headers.iter().enumerate() {
        if skip.contains(name.as_str()) {
            continue;
        }
        match table.kind(c) {
            ColumnKind::Float => cont.push(name.clone()),
            ColumnKind::Int if table.n_unique(c) > max_card => cont.push(name.clone()),
            _ => cat.push(name.clone()),
        }
    }
    (cont, cat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(v: &[&str]) -> Vec<Option<String>> {
        v.iter()
            .map(|s| (!is_missing(s)).then(|| s.to_string()))
            .collect()
    }

    #[test]
    fn kinds_follow_pandas() {
        assert_eq!(infer_kind(&cells(&["1", "2", "3"])), ColumnKind::Int);
        assert_eq!(infer_kind(&cells(&["1", "NA", "3"])), ColumnKind::Float);
        assert_eq!(infer_kind(&cells(&["1.5", "2", ""])), ColumnKind::Float);
        assert_eq!(infer_kind(&cells(&["True", "False"])), ColumnKind::Bool);
        assert_eq!(infer_kind(&cells(&["a", "1"])), ColumnKind::Text);
        assert_eq!(infer_kind(&cells(&["null", "NaN"])), ColumnKind::Float);
    }
}
