//! RecordIO, the framing of the scheduler event stream: `<decimal byte length>\n<bytes>`,
//! repeated. HTTP chunk boundaries mean nothing; [`Decoder`] takes bytes as they come and
//! yields whole records.

use std::collections::VecDeque;

/// The longest record accepted (64 MiB): a length beyond it means the stream is corrupt.
pub const MAX_RECORD: usize = 64 << 20;

/// A stream that does not follow RecordIO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError(pub String);

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed RecordIO stream: {}", self.0)
    }
}

impl std::error::Error for FramingError {}

/// Frames one record.
#[must_use]
pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + 12);
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(record);
    out
}

/// Incremental decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Length of the record being read, once its header is complete.
    want: Option<usize>,
    ready: VecDeque<Vec<u8>>,
}

impl Decoder {
    /// A decoder at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; whole records become available from [`Decoder::next_record`].
    ///
    /// # Errors
    /// A header that is not a decimal length, a zero length, or one over [`MAX_RECORD`].
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), FramingError> {
        while !bytes.is_empty() {
            match self.want {
                None => {
                    if let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
                        self.buf.extend_from_slice(&bytes[..nl]);
                        bytes = &bytes[nl + 1..];
                        let len = parse_len(&self.buf)?;
                        self.buf.clear();
                        self.buf.reserve(len);
                        self.want = Some(len);
                    } else {
                        self.buf.extend_from_slice(bytes);
                        if self.buf.len() > 20 {
                            return Err(FramingError(format!(
                                "a record length of more than 20 characters: {:?}…",
                                String::from_utf8_lossy(&self.buf[..20])
                            )));
                        }
                        return Ok(());
                    }
                }
                Some(len) => {
                    let take = (len - self.buf.len()).min(bytes.len());
                    self.buf.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.buf.len() == len {
                        self.ready.push_back(std::mem::take(&mut self.buf));
                        self.want = None;
                    }
                }
            }
        }
        Ok(())
    }

    /// The next whole record, if any.
    pub fn next_record(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Whether a record is partly read (the stream ended mid-record if it closes now).
    #[must_use]
    pub fn is_mid_record(&self) -> bool {
        !self.buf.is_empty() || self.want.is_some()
    }
}

fn parse_len(header: &[u8]) -> Result<usize, FramingError> {
    let text = std::str::from_utf8(header)
        .map_err(|_| FramingError("a record length that is not text".to_owned()))?;
    let text = text.trim_end_matches('\r');
    let len: usize = text
        .parse()
        .map_err(|_| FramingError(format!("record length {text:?} is not a decimal number")))?;
    if len == 0 {
        return Err(FramingError("a record of length 0".to_owned()));
    }
    if len > MAX_RECORD {
        return Err(FramingError(format!(
            "a record of {len} bytes (at most {MAX_RECORD} are accepted)"
        )));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_anywhere_come_out_whole() {
        let mut stream = encode(br#"{"type":"HEARTBEAT"}"#);
        stream.extend(encode("é€".as_bytes()));
        for cut in 0..stream.len() {
            let mut d = Decoder::new();
            d.feed(&stream[..cut]).unwrap();
            d.feed(&stream[cut..]).unwrap();
            assert_eq!(d.next_record().unwrap(), br#"{"type":"HEARTBEAT"}"#);
            assert_eq!(d.next_record().unwrap(), "é€".as_bytes());
            assert!(d.next_record().is_none());
            assert!(!d.is_mid_record());
        }
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(Decoder::new().feed(b"x1\n{}").is_err());
        assert!(Decoder::new().feed(b"0\n").is_err());
        assert!(Decoder::new().feed(b"99999999999\n").is_err());
        assert!(Decoder::new().feed(&[b'1'; 30]).is_err());
        let mut d = Decoder::new();
        d.feed(b"5\nab").unwrap();
        assert!(d.is_mid_record());
    }
}
