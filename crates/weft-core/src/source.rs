//! A pipeline file's bytes as text. weft reads UTF-8 only; bytes that are not are a
//! diagnostic at the first bad byte (line, column and byte offset), never a bare I/O error.

use crate::diag::{Diagnostic, Pos, codes};

/// `bytes` as UTF-8 text, or a diagnostic locating the first byte that is not.
pub fn decode<'b>(bytes: &'b [u8], file: &str) -> Result<&'b str, Box<Diagnostic>> {
    let error = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(error) => error,
    };
    let offset = error.valid_up_to();
    // Everything before the bad byte is valid: count lines and characters in it.
    let valid = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let line_start = valid.rfind('\n').map_or(0, |at| at + 1);
    let line = valid.matches('\n').count() + 1;
    let column = valid[line_start..].chars().count() + 1;
    let pos = Pos::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    );
    let what = match error.error_len() {
        Some(_) => format!(
            "byte 0x{:02X} at offset {offset} does not start a UTF-8 character",
            bytes[offset]
        ),
        None => format!("it ends inside a UTF-8 character that starts at offset {offset}"),
    };
    let utf16 = bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]);
    let message = if utf16 {
        format!("the file is UTF-16, not UTF-8: {what}")
    } else {
        format!("the file is not UTF-8 text: {what} (line {line}, column {column})")
    };
    Err(Box::new(
        Diagnostic::new(file, pos, "", codes::ENCODING, message).with_hint(
            "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 FILE`); weft reads UTF-8 only",
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_passes_and_bad_bytes_are_located() {
        assert_eq!(decode(b"a: 1\n", "p.yaml"), Ok("a: 1\n"));
        // (bytes, line, column, message fragment)
        let table: [(&[u8], u32, u32, &str); 5] = [
            (b"\xE9\n", 1, 1, "byte 0xE9 at offset 0 does not start"),
            (
                b"apiVersion: v1\nname: caf\xE9\n",
                2,
                10,
                "byte 0xE9 at offset 24 does not start a UTF-8 character (line 2, column 10)",
            ),
            // Columns count characters, not bytes.
            ("a: é\nb: éé".as_bytes(), 1, 1, ""),
            (b"k: \xC3\xA9\xC3\xA9 \xFF", 1, 7, "byte 0xFF at offset 8"),
            (
                b"k: \xE2\x82",
                1,
                4,
                "ends inside a UTF-8 character that starts at offset 3",
            ),
        ];
        for (bytes, line, column, fragment) in table {
            match decode(bytes, "p.yaml") {
                Ok(_) if fragment.is_empty() => {}
                Ok(_) => panic!("{bytes:?} decoded"),
                Err(diagnostic) => {
                    assert_eq!(
                        (diagnostic.line, diagnostic.column),
                        (line, column),
                        "{bytes:?}"
                    );
                    assert_eq!(diagnostic.code, "encoding");
                    assert!(
                        diagnostic.message.contains(fragment),
                        "{}",
                        diagnostic.message
                    );
                }
            }
        }
        let utf16 = decode(b"\xFF\xFEa\x00", "p.yaml").expect_err("UTF-16");
        assert!(
            utf16.message.starts_with("the file is UTF-16"),
            "{}",
            utf16.message
        );
    }
}
