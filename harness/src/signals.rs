//! SIGTERM and SIGINT: a scheduler (Slurm preemption or time limit, a Kubernetes eviction) or a
//! user asks the process to stop. Long commands check [`requested`] between batches: the current
//! batch finishes, every finished line is already flushed, and the process exits with
//! [`EXIT_INTERRUPTED`] so that a requeued task resumes. A watchdog exits with the same status
//! when the batch takes longer than the grace period; a second signal exits at once.
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// Exit status of a run stopped by SIGTERM/SIGINT (EX_TEMPFAIL: rerun the same command).
pub const EXIT_INTERRUPTED: i32 = 75;

static STOP: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);
static BEFORE_EXIT: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets what runs before the process exits on a stop (e.g. a Slurm self-requeue), once.
pub fn before_exit(f: fn()) {
    let _ = BEFORE_EXIT.set(f);
}

/// Runs the [`before_exit`] action (at most once).
pub fn run_before_exit() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if let (Some(f), false) = (BEFORE_EXIT.get(), DONE.swap(true, Ordering::SeqCst)) {
        f();
    }
}

/// The error a command returns when it stopped on a signal.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {signal} after the last finished sample; rerun the same command to resume")]
pub struct Interrupted {
    pub signal: &'static str,
}

impl Interrupted {
    pub fn now() -> Interrupted {
        Interrupted { signal: signal_name(SIGNAL.load(Ordering::SeqCst)) }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(EXIT_INTERRUPTED) };
    }
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// Installs the handlers and the watchdog (once per process).
pub fn install(grace: Duration) {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only touches atomics and calls _exit, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    std::thread::spawn(move || {
        while !requested() {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(grace);
        eprintln!(
            "emu-eval: error: {}: the current batch did not finish within --grace-seconds {}; stopped (finished samples are kept)",
            Interrupted::now().signal,
            grace.as_secs()
        );
        run_before_exit();
        std::process::exit(EXIT_INTERRUPTED);
    });
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once a stop was asked for.
pub fn check() -> Result<(), Interrupted> {
    if requested() {
        Err(Interrupted::now())
    } else {
        Ok(())
    }
}
