//! One writer per profile and output folder: the commands take `tailor_spec::files::Lock`
//! through here, waiting (and saying for whom) unless `--no-wait` was given.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use tailor_spec::files::{Lock, LockError};
use tracing::warn;

static NO_WAIT: AtomicBool = AtomicBool::new(false);

/// `--no-wait`: fail at once instead of waiting for another writer.
pub fn set_no_wait(no_wait: bool) {
    NO_WAIT.store(no_wait, Ordering::Relaxed);
}

fn on_wait(target: &Path) -> impl FnMut(&str) + '_ {
    move |holder: &str| {
        warn!(
            path = %target.display(),
            "another tailor is writing this ({holder}); waiting for it to finish \
             (--no-wait fails instead)"
        )
    }
}

/// Locks a file tailor is about to write (a profile).
pub fn file(target: &Path) -> Result<Lock, LockError> {
    Lock::file(
        target,
        !NO_WAIT.load(Ordering::Relaxed),
        &mut on_wait(target),
    )
}

/// Locks an output folder (creating it).
pub fn folder(dir: &Path) -> Result<Lock, LockError> {
    Lock::folder(dir, !NO_WAIT.load(Ordering::Relaxed), &mut on_wait(dir))
}
