//! The CLI verbs: `check` (validate and print the plan), `status`, `cutover`, `translate-offsets`,
//! `import-connect`, and the run command (the daemon).

pub mod check;
pub mod cutover;
pub mod import_connect;
pub mod run;
pub mod status;
pub mod translate;

use crate::config::diagnostics::ConfigErrors;

/// Prints every configuration problem, one per line, on stderr.
pub fn print_config_errors(errors: &ConfigErrors) {
    for diagnostic in &errors.diagnostics {
        eprintln!("{diagnostic}");
    }
    eprintln!("{errors}");
}
