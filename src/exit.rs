//! Process exit codes: 0 clean stop, 64 configuration or usage error (systemd does not restart-loop
//! on it, `RestartPreventExitStatus=64`), 1 any other failure.

pub const OK: u8 = 0;
pub const FAILURE: u8 = 1;
/// `EX_USAGE` from sysexits.h.
pub const CONFIG_ERROR: u8 = 64;
