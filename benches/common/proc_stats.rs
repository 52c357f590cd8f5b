//! What both bench helpers read of a process: CPU ticks and memory from `/proc/<pid>`, the
//! clock tick rate, wall-clock milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Default)]
pub struct ProcSample {
    /// utime + stime + cutime + cstime, in clock ticks.
    pub cpu_ticks: u64,
    pub vm_hwm_kb: u64,
    pub vm_rss_kb: u64,
}

pub fn proc_sample(pid: &str) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    // Fields after "(comm)": state is field 3, utime/stime/cutime/cstime are fields 14-17.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    if fields.first() == Some(&"Z") {
        return None; // exited, not reaped yet: its counters are no longer meaningful
    }
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_ticks: tick(14) + tick(15) + tick(16) + tick(17),
        vm_hwm_kb: kb("VmHWM:"),
        vm_rss_kb: kb("VmRSS:"),
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
