//! Where log lines go: stdout, written in batches by one thread (see `Output`).

use std::io::Write as _;

/// Lines go to stdout from one writer thread that wakes every `WRITE_INTERVAL` and writes
/// what piled up meanwhile in one go: a busy server writes many lines per system call, and a
/// request neither waits for stdout nor wakes a thread (on a loaded core, a wake-up per line
/// cost more than the line). A line reaches stdout within `WRITE_INTERVAL`. A request
/// appends its line to one shared buffer under a lock: a copy of a few hundred bytes, no
/// channel and no allocation that another thread frees. A request that finds more than
/// `MAX_PENDING` bytes waiting writes them out itself (the back-pressure of writing directly).
/// `flush` writes what waits (at shutdown).
struct Output {
    pending: std::sync::Mutex<Vec<u8>>,
    /// Held while a batch is taken and written, so batches reach stdout in order.
    writing: std::sync::Mutex<()>,
}

const WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);
const MAX_PENDING: usize = 4 << 20;

impl Output {
    fn send(&self, line: &[u8]) {
        let over = {
            let mut pending = lock(&self.pending);
            pending.extend_from_slice(line);
            pending.len() > MAX_PENDING
        };
        if over {
            self.write_pending(&mut Vec::new());
        }
    }

    /// Writes what waits; `spare` (empty) takes the buffer's place, so the writer thread
    /// reuses two buffers instead of allocating.
    fn write_pending(&self, spare: &mut Vec<u8>) {
        let _writing = lock(&self.writing);
        std::mem::swap(&mut *lock(&self.pending), spare);
        if !spare.is_empty() {
            let mut out = std::io::stdout().lock();
            // A closed stdout must not take the server down; the lines are lost.
            let _ = out.write_all(spare).and_then(|()| out.flush());
            spare.clear();
        }
    }
}

/// A poisoned lock still holds whole lines: a panic never stops between two of them.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn output() -> &'static Output {
    static OUTPUT: std::sync::OnceLock<Output> = std::sync::OnceLock::new();
    OUTPUT.get_or_init(|| {
        let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(|| {
            let mut spare = Vec::with_capacity(64 * 1024);
            loop {
                std::thread::sleep(WRITE_INTERVAL);
                output().write_pending(&mut spare);
            }
        });
        if spawned.is_err() {
            eprintln!("logging: the log writer thread could not start; lines wait for a flush");
        }
        Output {
            pending: std::sync::Mutex::new(Vec::with_capacity(64 * 1024)),
            writing: std::sync::Mutex::new(()),
        }
    })
}

/// Writes every line logged so far (at shutdown, before the process exits).
pub fn flush() {
    output().write_pending(&mut Vec::new());
}

/// Queues one whole line (it ends with a newline).
pub(super) fn send(line: &[u8]) {
    output().send(line);
}
