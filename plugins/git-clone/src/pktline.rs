//! Git's pkt-line framing: four hex digits of length (including themselves), then the
//! payload; `0000` flush, `0001` delimiter, `0002` response end.

/// One framed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pkt<'a> {
    /// A payload line.
    Data(&'a [u8]),
    /// `0000`.
    Flush,
    /// `0001`.
    Delim,
    /// `0002`.
    End,
}

/// Appends `payload` as one pkt-line.
pub fn line(out: &mut Vec<u8>, payload: &str) {
    out.extend_from_slice(format!("{:04x}", payload.len() + 4).as_bytes());
    out.extend_from_slice(payload.as_bytes());
}

/// Appends a flush packet.
pub fn flush(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0000");
}

/// Appends a delimiter packet.
pub fn delim(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0001");
}

/// Reads pkt-lines from a buffer.
pub struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, at: 0 }
    }

    /// The next packet; `Ok(None)` at the end of the buffer.
    pub fn next_pkt(&mut self) -> Result<Option<Pkt<'a>>, String> {
        if self.at >= self.data.len() {
            return Ok(None);
        }
        let head = self
            .data
            .get(self.at..self.at + 4)
            .ok_or("the server's answer ends inside a pkt-line length")?;
        let text = std::str::from_utf8(head).map_err(|_| "a pkt-line length is not hex")?;
        let len = usize::from_str_radix(text, 16).map_err(|_| "a pkt-line length is not hex")?;
        self.at += 4;
        match len {
            0 => return Ok(Some(Pkt::Flush)),
            1 => return Ok(Some(Pkt::Delim)),
            2 => return Ok(Some(Pkt::End)),
            3 => return Err("a pkt-line has an invalid length 3".into()),
            _ => {}
        }
        let payload = self
            .data
            .get(self.at..self.at + len - 4)
            .ok_or("the server's answer ends inside a pkt-line")?;
        self.at += len - 4;
        Ok(Some(Pkt::Data(payload)))
    }
}

/// A payload as text without its trailing newline.
pub fn text(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_bad_framing_is_an_error() {
        let mut out = Vec::new();
        line(&mut out, "command=ls-refs\n");
        delim(&mut out);
        flush(&mut out);
        assert_eq!(&out[..4], b"0014");
        let mut reader = Reader::new(&out);
        assert_eq!(
            reader.next_pkt(),
            Ok(Some(Pkt::Data(&b"command=ls-refs\n"[..])))
        );
        assert_eq!(reader.next_pkt(), Ok(Some(Pkt::Delim)));
        assert_eq!(reader.next_pkt(), Ok(Some(Pkt::Flush)));
        assert_eq!(reader.next_pkt(), Ok(None));
        for bad in [&b"00"[..], b"zzzz", b"0003", b"0010abc"] {
            assert!(Reader::new(bad).next_pkt().is_err(), "{bad:?}");
        }
    }
}
