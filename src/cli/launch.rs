//! `fastvision launch`: data-parallel training over MPI, in the spirit of `torchrun` — starts the
//! ranks of one training command through Open MPI's `mpirun`, on this machine or on several,
//! each rank bound to its own cores; and the start of every process that an MPI launcher
//! started as one of its ranks (joining the group, rank 0 alone printing).

use std::ffi::OsString;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::parse::at_least;

/// Arguments of `fastvision launch`.
#[derive(clap::Args)]
pub struct LaunchArgs {
    /// Ranks to start (with --hosts or --hostfile: in all) [default: 2 on this machine; every
    /// slot of the hosts given].
    #[arg(long, value_parser = at_least(1))]
    pub nproc: Option<usize>,
    /// Machines and their ranks, as `a:2,b:2` (mpirun's --host); ssh must reach each without a
    /// password, and each must hold fastvision at the same path.
    #[arg(long, conflicts_with = "hostfile")]
    pub hosts: Option<String>,
    /// A host file as mpirun reads it (one `NAME slots=N` per line).
    #[arg(long)]
    pub hostfile: Option<PathBuf>,
    /// Compute threads of each rank [default: this machine's cores shared between the ranks of
    /// one machine].
    #[arg(long, value_parser = at_least(1))]
    pub threads: Option<usize>,
    /// BatchNorm's statistics over the whole global batch (PyTorch's SyncBatchNorm) instead of
    /// each rank's share (DDP's default); the CPU only.
    #[arg(long)]
    pub sync_bn: bool,
    /// The command every rank runs, after `--`: `train DIR --epochs 5`, `tabular train …`,
    /// `ensemble train …`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// The environment variable that asks the ranks for synchronised BatchNorm (`mpirun -x` it).
pub const SYNC_BN_VAR: &str = "FASTVISION_SYNC_BN";

/// Starts the ranks through `mpirun` and waits for them; any rank's failure is the job's.
pub fn launch(args: LaunchArgs) -> Result<()> {
    if !cfg!(feature = "distributed") {
        bail!(
            "`launch` needs fastvision built with the `distributed` feature (Open MPI installed, \
             then `cargo build --release --features distributed`)"
        );
    }
    let mpirun = which("mpirun").context(
        "`launch` starts the ranks with Open MPI's mpirun, which is not on PATH (Debian: apt-get \
         install openmpi-bin)",
    )?;
    let hosts = match (&args.hosts, &args.hostfile) {
        (Some(h), _) => parse_hosts(h)?,
        (None, Some(f)) => read_hostfile(f)?,
        (None, None) => Vec::new(),
    };
    for (host, _) in &hosts {
        check_reachable(host)?;
    }
    let nproc = match (args.nproc, hosts.is_empty()) {
        (Some(n), _) => n,
        (None, true) => 2,
        (None, false) => hosts.iter().map(|(_, n)| n).sum(),
    };
    // Ranks per machine: all here, or the most any host takes (its cores assumed like ours).
    let per_host = hosts.iter().map(|(_, n)| *n).max().unwrap_or(nproc);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or((cores / per_host.max(1)).max(1));

    let mut cmd = Command::new(&mpirun);
    cmd.arg("-np").arg(nproc.to_string());
    match (&args.hosts, &args.hostfile) {
        (Some(h), _) => {
            cmd.arg("--host").arg(h);
        }
        (None, Some(f)) => {
            cmd.arg("--hostfile").arg(f);
        }
        (None, None) => {}
    }
    // Each rank bound to its own cores, its compute threads as many as its cores.
    cmd.args([
        "--map-by",
        &format!("slot:PE={threads}"),
        "--bind-to",
        "core",
    ]);
    cmd.env("RAYON_NUM_THREADS", threads.to_string());
    cmd.args(["-x", "RAYON_NUM_THREADS"]);
    if args.sync_bn {
        cmd.env(SYNC_BN_VAR, "1");
        cmd.args(["-x", SYNC_BN_VAR]);
    }
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name
            .to_str()
            .filter(|n| n.starts_with("FASTVISION_") && *n != SYNC_BN_VAR)
        {
            cmd.args(["-x", name]);
        }
    }
    // Open MPI refuses root unless told twice; containers and CI run as root.
    if is_root() {
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    // On this machine the ranks' temporary folders (another rank's private copy of the run)
    // live in one folder of the launch's, removed when it ends: a rank that is killed cannot
    // remove its own.
    let scratch = if hosts.is_empty() {
        let dir = tempfile::Builder::new()
            .prefix("fastvision-launch-")
            .tempdir()
            .context("could not create the ranks' temporary folder")?;
        // (The ranks' only: mpirun keeps its own for its session files.)
        let mut var = OsString::from("TMPDIR=");
        var.push(dir.path());
        cmd.arg("-x").arg(var);
        Some(dir)
    } else {
        None
    };
    let (program, pre) = this_program()?;
    cmd.arg(program).args(pre).args(&args.command);
    eprintln!(
        "launch: {nproc} ranks{}, {} each{}",
        if hosts.is_empty() {
            " on this machine".to_string()
        } else {
            format!(
                " on {}",
                hosts
                    .iter()
                    .map(|(h, _)| h.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        fastvision::text::count(threads, "thread"),
        if args.sync_bn {
            ", synchronised BatchNorm"
        } else {
            ""
        },
    );
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", mpirun.display()))?;
    drop(scratch);
    if !status.success() {
        bail!(
            "the ranks stopped ({}): mpirun's message above says which rank and why; every rank \
             was stopped with it. A run that finished an epoch resumes with `fastvision launch \
             … -- train --resume DIR` (or the command's own --resume)",
            match status.code() {
                Some(c) => format!("mpirun exited with status {c}"),
                None => "mpirun was killed".to_string(),
            }
        );
    }
    Ok(())
}

/// The variable `python -m fastvision` sets to its interpreter, so that the ranks run the same.
const PYTHON_VAR: &str = "FASTVISION_LAUNCH_PYTHON";

/// The program the ranks run: this binary, or the Python interpreter with `-m fastvision` when
/// the command line is the Python package's door.
fn this_program() -> Result<(PathBuf, Vec<&'static str>)> {
    if let Some(python) = std::env::var_os(PYTHON_VAR) {
        return Ok((python.into(), vec!["-m", "fastvision"]));
    }
    let exe = std::env::current_exe().context("cannot tell where fastvision's binary is")?;
    Ok((exe, Vec::new()))
}

/// `a:2,b:2` as (host, ranks) pairs (a host without `:N` has one rank).
fn parse_hosts(spec: &str) -> Result<Vec<(String, usize)>> {
    spec.split(',')
        .map(|part| {
            let part = part.trim();
            let (host, n) = match part.rsplit_once(':') {
                Some((h, n)) => (
                    h,
                    n.parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .with_context(|| {
                            format!("--hosts: \"{part}\" wants HOST:RANKS, RANKS a positive number")
                        })?,
                ),
                None => (part, 1),
            };
            if host.is_empty() {
                bail!("--hosts: an empty host name in \"{spec}\"");
            }
            Ok((host.to_string(), n))
        })
        .collect()
}

/// The hosts of an mpirun host file (`NAME [slots=N]` per line, `#` comments).
fn read_hostfile(path: &Path) -> Result<Vec<(String, usize)>> {
    let text = fastvision::io::read_text(path, 1 << 20, "host file")?;
    let mut hosts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        let Some(host) = words.next() else { continue };
        let mut slots = 1;
        for w in words {
            if let Some(n) = w.strip_prefix("slots=") {
                slots = n.parse().ok().filter(|&n: &usize| n > 0).with_context(|| {
                    format!(
                        "{}:{}: slots wants a positive number",
                        path.display(),
                        i + 1
                    )
                })?;
            }
        }
        hosts.push((host.to_string(), slots));
    }
    if hosts.is_empty() {
        bail!("{}: no host in the host file", path.display());
    }
    Ok(hosts)
}

/// Whether `host` names this machine.
fn is_local(host: &str) -> bool {
    let me = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    matches!(host, "localhost" | "127.0.0.1" | "::1") || host == me.trim()
}

/// Refuses a host that cannot be reached: its name does not resolve, or its ssh port does not
/// answer within 5 s (mpirun starts remote ranks over ssh).
fn check_reachable(host: &str) -> Result<()> {
    if is_local(host) {
        return Ok(());
    }
    let addrs: Vec<_> = (host, 22)
        .to_socket_addrs()
        .with_context(|| format!("host {host} cannot be reached: its name does not resolve"))?
        .collect();
    let reached = addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(5)).is_ok());
    if !reached {
        bail!("host {host} cannot be reached: nothing answers on its ssh port (22) within 5 s");
    }
    Ok(())
}

/// `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Joins the ranks' group when an MPI launcher started this process as one of several; on any
/// rank but 0, the output goes nowhere (errors excepted: [`restore_stderr`] brings them back).
/// A build without MPI refuses to train as one of several.
pub fn join_group() -> Result<()> {
    #[cfg(feature = "distributed")]
    {
        let config = fastvision::distributed::GroupConfig {
            sync_batchnorm: std::env::var(SYNC_BN_VAR).is_ok_and(|v| v == "1"),
        };
        if fastvision::distributed::join_mpi(config)?.is_some_and(|(rank, _)| rank != 0) {
            quiet();
        }
        Ok(())
    }
    #[cfg(not(feature = "distributed"))]
    match fastvision::distributed::launched_as_rank().filter(|&(_, n)| n > 1) {
        Some((rank, size)) => bail!(
            "started as rank {rank} of {size} by an MPI launcher, but this fastvision was built \
             without the `distributed` feature: each rank would train alone"
        ),
        None => Ok(()),
    }
}

/// The original stderr of a quietened rank.
static SAVED_STDERR: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Sends stdout and stderr to /dev/null, keeping stderr's descriptor for errors.
#[cfg(feature = "distributed")]
fn quiet() {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return;
    };
    // SAFETY: plain descriptor calls on descriptors this process owns.
    unsafe {
        let saved = libc::dup(2);
        if saved >= 0 {
            let _ = SAVED_STDERR.set(saved);
        }
        libc::dup2(null.as_raw_fd(), 1);
        libc::dup2(null.as_raw_fd(), 2);
    }
}

/// Brings back a quietened rank's stderr (before it says an error).
pub fn restore_stderr() {
    if let Some(&fd) = SAVED_STDERR.get() {
        // SAFETY: `fd` is the descriptor `quiet` duplicated from stderr and kept open.
        unsafe {
            libc::dup2(fd, 2);
        }
    }
}
