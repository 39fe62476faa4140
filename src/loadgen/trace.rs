//! The Azure Functions trace format (2019): invocations per function per minute, execution
//! time percentiles, allocated memory. The files are untrusted input: sizes, line lengths,
//! columns, rows and values are bounded, and every error names the file, line and column.
//!
//! Functions are keyed by their hash columns (`HashOwner`, `HashApp`, `HashFunction`,
//! whichever the file has), so the full trace's files read unchanged: a durations or memory
//! file is joined on the hash columns it has (the full trace's memory file is per app).
//! Only the columns the replay uses are parsed; the rest are length-checked only.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bounds on untrusted trace files.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_line_bytes: usize,
    pub max_columns: usize,
    pub max_rows: usize,
    pub max_field_bytes: usize,
    /// Invocations of one function in one minute.
    pub max_count: u32,
    /// Invocations of all selected functions together.
    pub max_total: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 4 << 30,
            max_line_bytes: 1 << 20,
            max_columns: 10_000,
            max_rows: 10_000_000,
            max_field_bytes: 256,
            max_count: 10_000_000,
            max_total: 100_000_000,
        }
    }
}

/// What to read from the invocations file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection {
    /// The first N functions invoked in the chosen minutes (default: all).
    pub functions: Option<usize>,
    /// The first M minutes (default: all).
    pub minutes: Option<usize>,
}

/// A precise error: `file:line: column NAME: message`.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default(), column.as_ref().map(|c| format!(": column {c}")).unwrap_or_default())]
pub struct TraceError {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<String>,
    pub msg: String,
}

/// Hash columns, in key order.
pub const HASH_COLUMNS: [&str; 3] = ["HashOwner", "HashApp", "HashFunction"];

/// Percentile columns of the durations file and their ranks.
pub const PERCENTILES: [(f64, &str); 7] = [
    (0.0, "percentile_Average_0"),
    (0.01, "percentile_Average_1"),
    (0.25, "percentile_Average_25"),
    (0.50, "percentile_Average_50"),
    (0.75, "percentile_Average_75"),
    (0.99, "percentile_Average_99"),
    (1.0, "percentile_Average_100"),
];

/// One function of the trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    /// Values of the hash columns (`None` where the invocations file lacks the column).
    pub hashes: [Option<String>; 3],
    pub trigger: String,
    /// Invocations in each selected minute.
    pub counts: Vec<u32>,
    /// Execution-time percentiles in ms (non-decreasing), if the durations file has them.
    pub durations: Option<[f64; 7]>,
    /// `AverageAllocatedMb`, if the memory file has it.
    pub memory_mb: Option<f64>,
}

impl Function {
    /// All hash values joined with `/`.
    pub fn key(&self) -> String {
        full_key(&self.hashes)
    }
}

fn full_key(hashes: &[Option<String>; 3]) -> String {
    let present: Vec<&str> = hashes.iter().flatten().map(String::as_str).collect();
    present.join("/")
}

/// The hash values of the columns in `cols`, joined; `None` if one is missing.
fn key_of(hashes: &[Option<String>; 3], cols: [bool; 3]) -> Option<String> {
    let mut parts = vec![];
    for (h, used) in hashes.iter().zip(cols) {
        match (h, used) {
            (Some(v), true) => parts.push(v.as_str()),
            (None, true) => return None,
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// A parsed trace: the selected functions and the number of minutes in the file.
#[derive(Debug)]
pub struct Trace {
    pub minutes_in_file: usize,
    pub functions: Vec<Function>,
}

/// Finds the three files in `dir` (the first, sorted by name, whose name contains
/// `invocations`, `durations`, `memory`) and parses them.
pub fn load(dir: &Path, lim: &Limits, sel: Selection) -> Result<(Trace, [PathBuf; 3]), TraceError> {
    let find = |what: &str| -> Result<PathBuf, TraceError> {
        let err = |msg: String| TraceError {
            file: dir.display().to_string(),
            line: None,
            column: None,
            msg,
        };
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| err(e.to_string()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase());
                name.is_some_and(|n| n.contains(what) && n.ends_with(".csv"))
            })
            .collect();
        found.sort();
        found
            .into_iter()
            .next()
            .ok_or_else(|| err(format!("no *{what}*.csv file")))
    };
    let paths = [find("invocations")?, find("durations")?, find("memory")?];
    let open = |p: &PathBuf| -> Result<(String, std::fs::File), TraceError> {
        let name = p.display().to_string();
        let err = |msg: String| TraceError {
            file: name.clone(),
            line: None,
            column: None,
            msg,
        };
        let f = std::fs::File::open(p).map_err(|e| err(e.to_string()))?;
        let len = f.metadata().map_err(|e| err(e.to_string()))?.len();
        if len > lim.max_file_bytes {
            return Err(err(format!(
                "{len} bytes, more than {}",
                lim.max_file_bytes
            )));
        }
        Ok((name, f))
    };
    let (n0, f0) = open(&paths[0])?;
    let (n1, f1) = open(&paths[1])?;
    let (n2, f2) = open(&paths[2])?;
    let trace = parse((&n0, f0), (&n1, f1), (&n2, f2), lim, sel)?;
    Ok((trace, paths))
}

/// Parses the three files from memory (the function to fuzz).
pub fn parse_trace(
    invocations: &[u8],
    durations: &[u8],
    memory: &[u8],
    lim: &Limits,
    sel: Selection,
) -> Result<Trace, TraceError> {
    parse(
        ("invocations.csv", invocations),
        ("durations.csv", durations),
        ("memory.csv", memory),
        lim,
        sel,
    )
}

fn parse(
    inv: (&str, impl Read),
    dur: (&str, impl Read),
    mem: (&str, impl Read),
    lim: &Limits,
    sel: Selection,
) -> Result<Trace, TraceError> {
    let mut trace = parse_invocations(inv.0, inv.1, lim, sel)?;
    parse_durations(dur.0, dur.1, lim, &mut trace.functions)?;
    parse_memory(mem.0, mem.1, lim, &mut trace.functions)?;
    Ok(trace)
}

/// Reads the invocations file: hash columns, `Trigger`, minute columns `1`..`N`.
pub fn parse_invocations(
    file: &str,
    r: impl Read,
    lim: &Limits,
    sel: Selection,
) -> Result<Trace, TraceError> {
    let mut csv = Csv::open(file, r, lim)?;
    let hash_cols = csv.hash_columns()?;
    let trigger = csv.column("Trigger")?;
    let minute_cols = csv.minute_columns()?;
    let n = minute_cols.len();
    let m = sel.minutes.unwrap_or(n);
    if m == 0 || m > n {
        return Err(csv.err(
            None,
            None,
            format!("{m} minutes asked for, the file has {n}"),
        ));
    }
    let want = sel.functions.unwrap_or(usize::MAX);
    let mut functions: Vec<Function> = vec![];
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut total: u64 = 0;
    while functions.len() < want {
        let Some(rec) = csv.next()? else { break };
        let line = csv.line;
        let mut counts = Vec::with_capacity(m);
        for &c in &minute_cols[..m] {
            counts.push(csv.u32(&rec, c, line)?);
        }
        let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        if sum == 0 {
            continue;
        }
        total += sum;
        if total > lim.max_total {
            return Err(csv.err(
                Some(line),
                None,
                format!("more than {} invocations in all", lim.max_total),
            ));
        }
        let hashes = csv.hashes(&rec, &hash_cols, line)?;
        let key = full_key(&hashes);
        if let Some(&i) = by_key.get(&key) {
            // A repeated function: its invocations add up.
            for (a, b) in functions[i].counts.iter_mut().zip(counts) {
                *a = a.saturating_add(b);
            }
            continue;
        }
        by_key.insert(key, functions.len());
        functions.push(Function {
            hashes,
            trigger: csv.str(&rec, trigger, line)?.to_string(),
            counts,
            durations: None,
            memory_mb: None,
        });
    }
    Ok(Trace {
        minutes_in_file: n,
        functions,
    })
}

/// Index of each function by its key restricted to `cols`.
fn index(functions: &[Function], cols: [bool; 3]) -> HashMap<String, Vec<usize>> {
    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, f) in functions.iter().enumerate() {
        if let Some(k) = key_of(&f.hashes, cols) {
            map.entry(k).or_default().push(i);
        }
    }
    map
}

/// Reads the durations file into the functions it names (the first row of a key wins).
pub fn parse_durations(
    file: &str,
    r: impl Read,
    lim: &Limits,
    functions: &mut [Function],
) -> Result<(), TraceError> {
    let mut csv = Csv::open(file, r, lim)?;
    let cols = csv.key_columns(functions)?;
    let hash_cols = csv.hash_columns()?;
    let mut pcols = [0; 7];
    for (slot, (_, name)) in pcols.iter_mut().zip(PERCENTILES) {
        *slot = csv.column(name)?;
    }
    for_each_named(
        &mut csv,
        functions,
        cols,
        &hash_cols,
        |csv, rec, line, f| {
            let mut v = [0.0; 7];
            let mut max: f64 = 0.0;
            for (slot, &c) in v.iter_mut().zip(&pcols) {
                // Non-decreasing, so the interpolated distribution is valid.
                max = max.max(csv.f64(rec, c, line, 1e9)?);
                *slot = max;
            }
            f.durations = Some(v);
            Ok(())
        },
    )
}

/// Reads the memory file (`AverageAllocatedMb`) into the functions it names.
pub fn parse_memory(
    file: &str,
    r: impl Read,
    lim: &Limits,
    functions: &mut [Function],
) -> Result<(), TraceError> {
    let mut csv = Csv::open(file, r, lim)?;
    let cols = csv.key_columns(functions)?;
    let hash_cols = csv.hash_columns()?;
    let mb = csv.column("AverageAllocatedMb")?;
    for_each_named(
        &mut csv,
        functions,
        cols,
        &hash_cols,
        |csv, rec, line, f| {
            f.memory_mb = Some(csv.f64(rec, mb, line, 1e7)?);
            Ok(())
        },
    )
}

/// Calls `set` for every function named by a row of `csv` (the first row of a key wins).
fn for_each_named<R: Read>(
    csv: &mut Csv<R>,
    functions: &mut [Function],
    cols: [bool; 3],
    hash_cols: &[Option<usize>; 3],
    mut set: impl FnMut(&Csv<R>, &csv::ByteRecord, u64, &mut Function) -> Result<(), TraceError>,
) -> Result<(), TraceError> {
    let mut wanted = index(functions, cols);
    while let Some(rec) = csv.next()? {
        let line = csv.line;
        let hashes = csv.hashes(&rec, hash_cols, line)?;
        let Some(idx) = key_of(&hashes, cols).and_then(|k| wanted.remove(&k)) else {
            continue;
        };
        for i in idx {
            set(csv, &rec, line, &mut functions[i])?;
        }
    }
    Ok(())
}

/// A bounded CSV reader that reports positions.
struct Csv<R: Read> {
    file: String,
    rdr: csv::Reader<LineLimit<R>>,
    headers: Vec<String>,
    lim: Limits,
    rows: usize,
    /// Line of the last record read.
    line: u64,
}

impl<R: Read> Csv<R> {
    fn open(file: &str, r: R, lim: &Limits) -> Result<Self, TraceError> {
        let limited = LineLimit {
            inner: r,
            line: 1,
            since_newline: 0,
            total: 0,
            lim: lim.clone(),
        };
        let rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(limited);
        let mut c = Csv {
            file: file.to_string(),
            rdr,
            headers: vec![],
            lim: lim.clone(),
            rows: 0,
            line: 1,
        };
        let h = match c.rdr.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(c.csv_err(e)),
        };
        if h.is_empty() || (h.len() == 1 && h[0].is_empty()) {
            return Err(c.err(Some(1), None, "empty file: no header line".into()));
        }
        if h.len() > lim.max_columns {
            return Err(c.err(
                Some(1),
                None,
                format!("{} columns, more than {}", h.len(), lim.max_columns),
            ));
        }
        for (i, name) in h.iter().enumerate() {
            let name = std::str::from_utf8(name).map_err(|_| {
                c.err(
                    Some(1),
                    Some(format!("#{}", i + 1)),
                    "header is not UTF-8".into(),
                )
            })?;
            c.headers
                .push(name.trim().trim_start_matches('\u{feff}').to_string());
        }
        Ok(c)
    }

    fn err(&self, line: Option<u64>, column: Option<String>, msg: String) -> TraceError {
        TraceError {
            file: self.file.clone(),
            line,
            column,
            msg,
        }
    }

    fn csv_err(&self, e: csv::Error) -> TraceError {
        let line = e
            .position()
            .map(|p| p.line())
            .or(Some(self.rdr.get_ref().line));
        let msg = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("{len} fields, the header has {expected_len}"),
            csv::ErrorKind::Io(io) => io.to_string(),
            _ => e.to_string(),
        };
        self.err(line, None, msg)
    }

    fn column(&self, name: &str) -> Result<usize, TraceError> {
        self.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| self.err(Some(1), Some(name.into()), "missing".into()))
    }

    /// Index of each hash column in the file (`None` if absent); at least one must exist.
    fn hash_columns(&self) -> Result<[Option<usize>; 3], TraceError> {
        let cols = HASH_COLUMNS.map(|n| self.headers.iter().position(|h| h == n));
        if cols.iter().all(Option::is_none) {
            return Err(self.err(
                Some(1),
                Some("HashFunction".into()),
                "missing (no Hash* column)".into(),
            ));
        }
        Ok(cols)
    }

    /// The hash columns to join this file on: the ones it has, which the functions must have.
    fn key_columns(&self, functions: &[Function]) -> Result<[bool; 3], TraceError> {
        let cols = self.hash_columns()?.map(|c| c.is_some());
        for (i, used) in cols.iter().enumerate() {
            if *used && functions.iter().any(|f| f.hashes[i].is_none()) {
                return Err(self.err(
                    Some(1),
                    Some(HASH_COLUMNS[i].into()),
                    "the invocations file has no such column to join on".into(),
                ));
            }
        }
        Ok(cols)
    }

    /// Columns named `1`..`N`, in order.
    fn minute_columns(&self) -> Result<Vec<usize>, TraceError> {
        let mut cols = vec![];
        for (i, h) in self.headers.iter().enumerate() {
            if !h.is_empty() && h.bytes().all(|b| b.is_ascii_digit()) {
                if h.parse::<usize>().ok() != Some(cols.len() + 1) {
                    return Err(self.err(
                        Some(1),
                        Some(h.clone()),
                        format!("expected minute column {}", cols.len() + 1),
                    ));
                }
                cols.push(i);
            }
        }
        if cols.is_empty() {
            return Err(self.err(
                Some(1),
                Some("1".into()),
                "missing (no minute columns 1..N)".into(),
            ));
        }
        Ok(cols)
    }

    fn next(&mut self) -> Result<Option<csv::ByteRecord>, TraceError> {
        let mut rec = csv::ByteRecord::new();
        match self.rdr.read_byte_record(&mut rec) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.rows += 1;
                self.line = rec.position().map_or(self.line + 1, |p| p.line());
                if self.rows > self.lim.max_rows {
                    return Err(self.err(
                        Some(self.line),
                        None,
                        format!("more than {} rows", self.lim.max_rows),
                    ));
                }
                Ok(Some(rec))
            }
            Err(e) => Err(self.csv_err(e)),
        }
    }

    fn str<'a>(
        &self,
        rec: &'a csv::ByteRecord,
        c: usize,
        line: u64,
    ) -> Result<&'a str, TraceError> {
        let raw = rec.get(c).unwrap_or_default();
        let err = |msg: String| self.err(Some(line), Some(self.headers[c].clone()), msg);
        if raw.len() > self.lim.max_field_bytes {
            return Err(err(format!(
                "{} bytes, more than {}",
                raw.len(),
                self.lim.max_field_bytes
            )));
        }
        let s = std::str::from_utf8(raw)
            .map_err(|_| err("not UTF-8".into()))?
            .trim();
        if s.is_empty() {
            return Err(err("empty".into()));
        }
        Ok(s)
    }

    fn hashes(
        &self,
        rec: &csv::ByteRecord,
        cols: &[Option<usize>; 3],
        line: u64,
    ) -> Result<[Option<String>; 3], TraceError> {
        let mut out: [Option<String>; 3] = Default::default();
        for (slot, c) in out.iter_mut().zip(cols) {
            if let Some(c) = *c {
                *slot = Some(self.str(rec, c, line)?.to_string());
            }
        }
        Ok(out)
    }

    fn u32(&self, rec: &csv::ByteRecord, c: usize, line: u64) -> Result<u32, TraceError> {
        let s = self.str(rec, c, line)?;
        let err = |msg: String| self.err(Some(line), Some(self.headers[c].clone()), msg);
        let v: u32 = s
            .parse()
            .map_err(|_| err(format!("{s:?} is not a count")))?;
        if v > self.lim.max_count {
            return Err(err(format!("{v} is more than {}", self.lim.max_count)));
        }
        Ok(v)
    }

    fn f64(&self, rec: &csv::ByteRecord, c: usize, line: u64, max: f64) -> Result<f64, TraceError> {
        let s = self.str(rec, c, line)?;
        let err = |msg: String| self.err(Some(line), Some(self.headers[c].clone()), msg);
        let v: f64 = s
            .parse()
            .map_err(|_| err(format!("{s:?} is not a number")))?;
        if !v.is_finite() || !(0.0..=max).contains(&v) {
            return Err(err(format!("{s} is out of range 0..={max}")));
        }
        Ok(v)
    }
}

/// Fails reading once a line or the whole input is longer than the limits, so a hostile
/// file cannot make the CSV reader buffer without bound.
struct LineLimit<R> {
    inner: R,
    line: u64,
    since_newline: usize,
    total: u64,
    lim: Limits,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total > self.lim.max_file_bytes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("more than {} bytes", self.lim.max_file_bytes),
            ));
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line += 1;
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > self.lim.max_line_bytes {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("line longer than {} bytes", self.lim.max_line_bytes),
                    ));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
