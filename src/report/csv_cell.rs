//! Spreadsheet-safe CSV cells.
//!
//! Excel and LibreOffice run a cell that starts with `=`, `+`, `-` or `@` as a
//! formula, and treat a leading tab or carriage return the same way after
//! trimming. A label or an API error message can start with any of them, so
//! such a cell gets a leading `'`, which both programs show as plain text.
//! The csv crate does the quoting; this only changes the cell's first byte.

use std::borrow::Cow;

const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Returns the cell, prefixed with `'` when a spreadsheet would run it as a formula.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_prefixed() {
        for cell in [
            "=1+2",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "=HYPERLINK(\"http://x\")",
        ] {
            assert_eq!(neutralize(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn plain_cells_unchanged() {
        for cell in ["", "team-a", "a=b", "0a1b", "'quoted", " =x", "\u{feff}=x"] {
            assert_eq!(neutralize(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn quoting_left_to_csv_crate() {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record([neutralize("=a,b").as_ref(), "x\"y"])
            .unwrap();
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        assert_eq!(text, "\"'=a,b\",\"x\"\"y\"\n");
    }
}
