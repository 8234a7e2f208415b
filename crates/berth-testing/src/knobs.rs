//! Knobs of the long randomized tests (fault simulation, API fuzzing, chaos soak), read from
//! environment variables: how many cases or how long, and the seed, so that a run can be made
//! longer or a failure replayed without editing the test.

use std::fmt::Display;
use std::str::FromStr;

/// The value of the environment variable `name` parsed as a `T`, or `default` when it is not
/// set (or set to nothing).
///
/// # Panics
/// When the variable is set to something that does not parse as a `T` (or is not Unicode):
/// the message names the variable and the value, so a mistyped knob is not silently ignored.
#[must_use]
#[track_caller]
pub fn env_knob<T>(name: &str, default: T) -> T
where
    T: FromStr,
    T::Err: Display,
{
    parsed(name).unwrap_or(default)
}

/// The seed of a randomized run: the environment variable `name` when set (read as
/// [`env_knob`] reads it), else one from the clock (milliseconds since the epoch), so each run
/// differs. The seed is printed with how to replay it (a failing test shows its output).
///
/// # Panics
/// As [`env_knob`].
#[must_use]
#[track_caller]
pub fn env_seed(name: &str) -> u64 {
    let seed = parsed(name).unwrap_or_else(berth_scheduler::now_ms);
    println!("seed {seed} ({name}={seed} replays it)");
    seed
}

/// The variable `name` parsed, `None` when unset or empty; panics on a value that does not
/// parse.
#[track_caller]
fn parsed<T>(name: &str) -> Option<T>
where
    T: FromStr,
    T::Err: Display,
{
    let value = match std::env::var(name) {
        Ok(value) => value,
        Err(std::env::VarError::NotPresent) => return None,
        Err(std::env::VarError::NotUnicode(value)) => {
            panic!("{name}={} is not valid Unicode", value.display())
        }
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    match trimmed.parse() {
        Ok(parsed) => Some(parsed),
        Err(e) => panic!(
            "{name}={value:?} cannot be read as a {}: {e}",
            std::any::type_name::<T>()
        ),
    }
}
