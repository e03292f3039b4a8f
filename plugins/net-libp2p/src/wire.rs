//! The frames on a peer stream: `len: u32 BE | topic_len: u8 | topic | payload`, where `len`
//! counts everything after itself. One stream per direction per peer carries every topic, so a
//! peer's messages arrive in the order it sent them. The accepting side first writes one byte,
//! [`ACCEPTED`]; the opening side sends nothing before it reads that byte, so no message goes
//! into a stream the remote dropped unaccepted.
//!
//! Reading is bounded before anything is allocated: a frame longer than the largest message
//! plus the largest topic, or with a payload over its topic's limit, is an error naming what
//! was wrong, and the reader never allocates more than the limit.

use futures::{AsyncRead, AsyncReadExt};

/// The byte a node writes on a stream it accepted.
pub const ACCEPTED: u8 = 0xA5;

/// Longest topic name on the wire.
pub const MAX_TOPIC_BYTES: usize = 64;

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    Oversize { len: usize, max: usize },
    #[error("message on {topic:?} of {len} bytes exceeds that topic's limit of {max}")]
    TopicOversize { topic: String, len: usize, max: usize },
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    #[error("stream closed: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes one frame. The caller has checked `topic` (at most [`MAX_TOPIC_BYTES`]).
pub fn encode(topic: &str, payload: &[u8]) -> Vec<u8> {
    let len = 1 + topic.len() + payload.len();
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(topic.len() as u8);
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one frame. `limit(topic)` is the largest payload accepted on `topic`; `max_payload`
/// bounds every frame. Returns `Ok(None)` at a clean end of stream.
pub async fn read<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_payload: usize,
    limit: impl Fn(&str) -> usize,
) -> Result<Option<(String, Vec<u8>)>, FrameError> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(header) as usize;
    let max = max_payload + 1 + MAX_TOPIC_BYTES;
    if len > max {
        return Err(FrameError::Oversize { len, max });
    }
    let mut topic_len = [0u8; 1];
    reader.read_exact(&mut topic_len).await?;
    let topic_len = topic_len[0] as usize;
    if topic_len == 0 || topic_len > MAX_TOPIC_BYTES || 1 + topic_len > len {
        return Err(FrameError::Malformed("topic length out of range"));
    }
    let mut topic = vec![0u8; topic_len];
    reader.read_exact(&mut topic).await?;
    let topic = String::from_utf8(topic).map_err(|_| FrameError::Malformed("topic is not UTF-8"))?;
    let payload_len = len - 1 - topic_len;
    let topic_max = limit(&topic).min(max_payload);
    if payload_len > topic_max {
        return Err(FrameError::TopicOversize { topic, len: payload_len, max: topic_max });
    }
    let mut payload = vec![0u8; payload_len];
    reader.read_exact(&mut payload).await?;
    Ok(Some((topic, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], max: usize) -> Result<Option<(String, Vec<u8>)>, FrameError> {
        futures::executor::block_on(read(&mut futures::io::Cursor::new(bytes), max, |t| if t == "small" { 4 } else { usize::MAX }))
    }

    #[test]
    fn frames_round_trip_and_bad_ones_are_named() {
        let frame = encode("aether/tx/1", b"hello");
        assert_eq!(read_all(&frame, 100).unwrap(), Some(("aether/tx/1".into(), b"hello".to_vec())));
        assert!(read_all(&[], 100).unwrap().is_none(), "clean end of stream");
        assert!(matches!(read_all(&encode("t", &[0; 200]), 100), Err(FrameError::Oversize { .. })));
        assert!(matches!(read_all(&encode("small", b"12345"), 100), Err(FrameError::TopicOversize { len: 5, max: 4, .. })));
        let mut zero_topic = encode("t", b"x");
        zero_topic[4] = 0;
        assert!(matches!(read_all(&zero_topic, 100), Err(FrameError::Malformed(_))));
        let mut bad_utf8 = encode("t", b"x");
        bad_utf8[5] = 0xff;
        assert!(matches!(read_all(&bad_utf8, 100), Err(FrameError::Malformed(_))));
        // A length that promises more than the stream holds: an I/O error, not a hang or panic.
        assert!(matches!(read_all(&encode("t", b"abc")[..7], 100), Err(FrameError::Io(_))));
    }
}
