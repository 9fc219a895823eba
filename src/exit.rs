//! The exit-code contract that cron jobs and CI pipelines script against.

use crate::report::Summary;
use crate::scan::shutdown::Stop;

/// Exit codes of `taurus-audit scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every row was checked and has encryption on.
    Compliant = 0,
    /// 1: at least one row has encryption off.
    Off = 1,
    /// 2: the scan could not run (usage, inventory, credentials, output folder).
    Failed = 2,
    /// 3: no row is off, but some rows could not be checked.
    Unchecked = 3,
    /// 130: stopped by SIGINT; the reports list the unchecked rows.
    Interrupted = 130,
    /// 143: stopped by SIGTERM; the reports list the unchecked rows.
    Terminated = 143,
}

/// The exit-code table for `--help` and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    every row was checked and has encryption on
  1    at least one row has encryption off
  2    the scan could not run (usage, inventory, credentials, output folder),
       or the API rejected the credentials and no row could be checked
  3    no row is off, but some rows could not be checked (not_found or error)
  130  interrupted by SIGINT; the reports list the unchecked rows as not_checked
  143  interrupted by SIGTERM; likewise";

impl Exit {
    /// Maps a finished scan to its exit code. A found `off` outranks an
    /// interruption, so a CI gate never reads a stopped scan with offenders as anything but failing.
    pub fn from_scan(summary: &Summary, interrupted: Option<Stop>) -> Exit {
        if summary.off > 0 {
            return Exit::Off;
        }
        match interrupted {
            Some(Stop::Interrupt) => return Exit::Interrupted,
            Some(Stop::Terminate) => return Exit::Terminated,
            _ => {}
        }
        if summary.unchecked() > 0 {
            Exit::Unchecked
        } else {
            Exit::Compliant
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(on: u64, off: u64, not_found: u64, error: u64, not_checked: u64) -> Summary {
        Summary {
            total: on + off + not_found + error + not_checked,
            on,
            off,
            not_found,
            error,
            not_checked,
            rows: 0,
            duplicates: 0,
        }
    }

    #[test]
    fn exit_code_table() {
        let cases = [
            (summary(5, 0, 0, 0, 0), None, 0),
            (summary(5, 1, 0, 0, 0), None, 1),
            (summary(5, 1, 2, 3, 0), None, 1),
            (summary(5, 0, 1, 0, 0), None, 3),
            (summary(5, 0, 0, 1, 0), None, 3),
            (summary(0, 0, 0, 4, 0), None, 3),
            (summary(2, 0, 0, 0, 3), Some(Stop::Interrupt), 130),
            (summary(2, 0, 0, 0, 3), Some(Stop::Terminate), 143),
            (summary(2, 1, 0, 0, 3), Some(Stop::Interrupt), 1),
            (summary(0, 0, 0, 0, 0), None, 0),
        ];
        for (summary, stop, code) in cases {
            assert_eq!(
                Exit::from_scan(&summary, stop).code(),
                code,
                "{summary:?} {stop:?}"
            );
        }
    }
}
