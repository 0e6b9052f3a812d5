//! What a run measured: figures beside their goals, latency percentiles from HDR histograms, and the
//! CPU and memory of every process; printed as a table and written as JSON.

use comfy_table::{Cell, Table};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::servers::ProcFigure;

/// A latency histogram in microseconds, 1 µs to 1 h at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub name: String,
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn of(name: &str, h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            name: name.to_owned(),
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// The goal a figure is held against.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    fn met_by(self, value: f64) -> bool {
        match self {
            Self::AtLeast(goal) => value >= goal,
            Self::AtMost(goal) => value <= goal,
        }
    }

    fn describe(self) -> String {
        match self {
            Self::AtLeast(goal) => format!("≥ {}", short(goal)),
            Self::AtMost(goal) => format!("≤ {}", short(goal)),
        }
    }
}

/// A goal as written: whole numbers whole, others to one decimal.
fn short(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v}") } else { format!("{v:.1}") }
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub goal: Option<Goal>,
    pub meets_goal: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_kib: u64,
    pub kernel: String,
    /// The durable-commit floor: 4 KiB writes each followed by `fdatasync`, per second, in the temporary
    /// directory (where the bench's SQLite databases live). It differs by machine (300 to 2,400 measured on
    /// ours), so every figure stands beside the floor it was measured on.
    pub fsyncs_per_second: f64,
}

/// 4 KiB written and synced to `dir` again and again for `during`; the syncs per second.
pub fn fsync_rate(dir: &std::path::Path, during: std::time::Duration) -> f64 {
    use std::io::Write;
    let path = dir.join(format!("renkei-bench-fsync-{}", std::process::id()));
    let Ok(mut f) = std::fs::File::create(&path) else { return 0.0 };
    let block = [0x5au8; 4096];
    let started = std::time::Instant::now();
    let mut syncs = 0u32;
    while started.elapsed() < during {
        if f.write_all(&block).and_then(|()| f.sync_data()).is_err() {
            syncs = 0;
            break;
        }
        syncs += 1;
    }
    let rate = f64::from(syncs) / started.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    rate
}

impl Machine {
    fn read() -> Self {
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:")).map(|v| v.trim().to_owned()))
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
        Self {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_kib,
            kernel,
            fsyncs_per_second: fsync_rate(&std::env::temp_dir(), std::time::Duration::from_secs(1)),
        }
    }
}

/// One run of one scenario.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    pub command: String,
    pub backend: String,
    pub nodes: usize,
    pub machine: Machine,
    pub parameters: serde_json::Value,
    pub figures: Vec<Figure>,
    pub latencies: Vec<Latency>,
    /// Post→delivery by the second of the measured interval the posts were due (rate scenarios).
    pub timeline: Vec<Latency>,
    pub counters: Vec<(String, u64)>,
    pub processes: Vec<ProcFigure>,
    pub notes: Vec<String>,
    /// A scenario's figures at each point of a curve (`history`: one per database size).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub curve: Option<serde_json::Value>,
}

impl Report {
    pub fn new(scenario: &str, backend: &str, nodes: usize, parameters: serde_json::Value) -> Self {
        Self {
            scenario: scenario.to_owned(),
            started_at: time::OffsetDateTime::now_utc(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            backend: backend.to_owned(),
            nodes,
            machine: Machine::read(),
            parameters,
            figures: Vec::new(),
            latencies: Vec::new(),
            timeline: Vec::new(),
            counters: Vec::new(),
            processes: Vec::new(),
            notes: Vec::new(),
            curve: None,
        }
    }

    pub fn figure(&mut self, name: &str, value: f64, unit: &str, goal: Option<Goal>) {
        let meets_goal = goal.map(|g| value.is_finite() && g.met_by(value));
        self.figures.push(Figure { name: name.into(), value, unit: unit.into(), goal, meets_goal });
    }

    /// The value of the figure named `name`, if this report has it.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.name == name).map(|f| f.value)
    }

    pub fn latency(&mut self, name: &str, h: &Histogram<u64>) {
        self.latencies.push(Latency::of(name, h));
    }

    pub fn count(&mut self, name: &str, value: u64) {
        self.counters.push((name.into(), value));
    }

    pub fn print(&self) {
        println!(
            "renkei-bench {} — {} backend, {} node(s), {} cores, durable-commit floor {:.0} fsync/s",
            self.scenario, self.backend, self.nodes, self.machine.cores, self.machine.fsyncs_per_second
        );
        let mut figures = Table::new();
        figures.set_header(["figure", "value", "unit", "goal", "meets"]);
        for f in &self.figures {
            figures.add_row([
                Cell::new(&f.name),
                Cell::new(format!("{:.1}", f.value)),
                Cell::new(&f.unit),
                Cell::new(f.goal.map(Goal::describe).unwrap_or_default()),
                Cell::new(match f.meets_goal {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "",
                }),
            ]);
        }
        println!("{figures}");
        if !self.latencies.is_empty() {
            let mut table = Table::new();
            table.set_header(["latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max", "mean"]);
            for l in &self.latencies {
                table.add_row([
                    l.name.clone(),
                    l.count.to_string(),
                    format!("{:.2}", l.p50_ms),
                    format!("{:.2}", l.p90_ms),
                    format!("{:.2}", l.p99_ms),
                    format!("{:.2}", l.p999_ms),
                    format!("{:.2}", l.max_ms),
                    format!("{:.2}", l.mean_ms),
                ]);
            }
            println!("{table}");
        }
        if !self.counters.is_empty() {
            let mut table = Table::new();
            table.set_header(["counter", "value"]);
            for (name, value) in &self.counters {
                table.add_row([name.clone(), value.to_string()]);
            }
            println!("{table}");
        }
        let mut procs = Table::new();
        procs.set_header(["process", "CPU s", "CPU % of a core", "RSS start MiB", "RSS end MiB", "RSS peak MiB"]);
        for p in &self.processes {
            let mib = |k: Option<u64>| k.map_or_else(|| "–".into(), |k| format!("{:.1}", k as f64 / 1024.0));
            procs.add_row([
                p.process.clone(),
                format!("{:.1}", p.cpu_seconds),
                format!("{:.0}", p.cpu_percent),
                mib(p.rss_start_kib),
                mib(p.rss_end_kib),
                mib(p.rss_peak_kib),
            ]);
        }
        println!("{procs}");
        if !self.timeline.is_empty() {
            let p99: Vec<String> = self.timeline.iter().map(|l| format!("{:.0}", l.p99_ms)).collect();
            println!("post→delivery p99 by second (ms): {}", p99.join(" "));
        }
        for note in &self.notes {
            println!("note: {note}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fsync_floor_is_measured() {
        let dir = tempfile::tempdir().unwrap();
        let rate = super::fsync_rate(dir.path(), std::time::Duration::from_millis(200));
        assert!(rate > 0.0, "{rate}");
    }
}
