//! The bytes of a cache entry: a resolved environment in a compact binary form, split into
//! blobs small enough for every OS keyring (Windows Credential Manager holds at most 2560
//! bytes per credential; an STS session token alone can be 2 KB).
//!
//! Payload (big-endian): magic `EHC2`, opened-at u64, expires-at u64, count u16, then per
//! variable: flags u8 (1 = secret, 2 = file, 4 = origin follows), the origin u8 (which of the
//! opened environments defined it) when flagged, name length u16, name, value length u32,
//! value. `EHC1` entries (no origins) are still read.
//! The first blob starts with a header: `EHB1`, the number of blobs u8, and the SHA-256 of the
//! whole payload, so a torn write or a foreign value is detected and treated as a miss.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::provider::{Resolved, ResolvedVar, Value};

/// The largest blob written to any store.
pub const MAX_BLOB: usize = 2560;
const PAYLOAD_MAGIC: &[u8; 4] = b"EHC2";
const PAYLOAD_MAGIC_WITHOUT_ORIGINS: &[u8; 4] = b"EHC1";
const BLOB_MAGIC: &[u8; 4] = b"EHB1";
const HEADER_LEN: usize = 4 + 1 + 32;
const MAX_BLOBS: usize = 64;

pub fn encode(resolved: &Resolved) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(PAYLOAD_MAGIC);
    out.extend_from_slice(&unix(resolved.opened_at).to_be_bytes());
    out.extend_from_slice(&unix(resolved.expires_at).to_be_bytes());
    out.extend_from_slice(&(resolved.vars.len() as u16).to_be_bytes());
    for var in &resolved.vars {
        let (is_file, value) = match &var.value {
            Value::Text(text) => (false, text),
            Value::File(content) => (true, content),
        };
        out.push(
            u8::from(var.secret) | (u8::from(is_file) << 1) | (u8::from(var.origin.is_some()) << 2),
        );
        out.extend(var.origin);
        out.extend_from_slice(&(var.name.len() as u16).to_be_bytes());
        out.extend_from_slice(var.name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

pub fn decode(bytes: &[u8]) -> Option<Resolved> {
    let mut reader = Reader { bytes, at: 0 };
    let with_origins = match reader.take(4)? {
        magic if magic == PAYLOAD_MAGIC => true,
        magic if magic == PAYLOAD_MAGIC_WITHOUT_ORIGINS => false,
        _ => return None,
    };
    let opened_at = time(reader.u64()?);
    let expires_at = time(reader.u64()?);
    let count = reader.u16()?;
    let mut vars = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let flags = reader.take(1)?[0];
        let origin = match flags & 4 != 0 {
            true if with_origins => Some(reader.take(1)?[0]),
            true => return None,
            false => None,
        };
        let name_len = usize::from(reader.u16()?);
        let name = String::from_utf8(reader.take(name_len)?.to_vec()).ok()?;
        let value_len = reader.u32()? as usize;
        let value = String::from_utf8(reader.take(value_len)?.to_vec()).ok()?;
        vars.push(ResolvedVar {
            name,
            value: if flags & 2 != 0 {
                Value::File(value)
            } else {
                Value::Text(value)
            },
            secret: flags & 1 != 0,
            origin,
        });
    }
    (reader.at == bytes.len()).then_some(Resolved {
        vars,
        opened_at,
        expires_at,
        from_cache: true,
        warning: None,
        raw: None,
    })
}

/// Splits a payload into blobs of at most [`MAX_BLOB`] bytes, the first with the header.
pub fn split(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let first_room = MAX_BLOB - HEADER_LEN;
    let rest = payload.len().saturating_sub(first_room);
    let count = 1 + rest.div_ceil(MAX_BLOB);
    if count > MAX_BLOBS {
        return None;
    }
    let mut first = Vec::with_capacity(MAX_BLOB);
    first.extend_from_slice(BLOB_MAGIC);
    first.push(count as u8);
    first.extend_from_slice(&Sha256::digest(payload));
    let split_at = payload.len().min(first_room);
    first.extend_from_slice(&payload[..split_at]);
    let mut blobs = vec![first];
    blobs.extend(payload[split_at..].chunks(MAX_BLOB).map(<[u8]>::to_vec));
    Some(blobs)
}

/// How many blobs an entry has, read from its first blob.
pub fn blob_count(first: &[u8]) -> Option<usize> {
    (first.len() >= HEADER_LEN && &first[..4] == BLOB_MAGIC)
        .then(|| usize::from(first[4]))
        .filter(|n| (1..=MAX_BLOBS).contains(n))
}

/// Joins blobs back into the payload, checking the hash.
pub fn join(blobs: &[Vec<u8>]) -> Option<Vec<u8>> {
    let first = blobs.first()?;
    if blob_count(first)? != blobs.len() {
        return None;
    }
    let mut payload = first[HEADER_LEN..].to_vec();
    for blob in &blobs[1..] {
        payload.extend_from_slice(blob);
    }
    (Sha256::digest(&payload).as_slice() == &first[5..HEADER_LEN]).then_some(payload)
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn time(unix: u64) -> SystemTime {
    crate::ground::time::from_unix(unix)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(slice)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn sample(token_len: usize) -> Resolved {
        Resolved {
            vars: vec![
                ResolvedVar {
                    name: "AWS_SESSION_TOKEN".into(),
                    value: Value::Text("T".repeat(token_len)),
                    secret: true,
                    origin: Some(1),
                },
                ResolvedVar {
                    name: "KUBECONFIG".into(),
                    value: Value::File("apiVersion: v1\n".into()),
                    secret: false,
                    origin: None,
                },
                ResolvedVar {
                    name: "EMPTY".into(),
                    value: Value::Text(String::new()),
                    secret: false,
                    origin: None,
                },
            ],
            opened_at: time(1_795_859_211),
            expires_at: time(1_795_862_811),
            from_cache: false,
            warning: None,
            raw: None,
        }
    }

    #[test]
    fn round_trips_through_bytes_and_blobs() {
        for token_len in [0, 10, 2000, 2600, 9000] {
            let resolved = sample(token_len);
            let blobs = split(&encode(&resolved)).unwrap();
            assert!(blobs.iter().all(|b| b.len() <= MAX_BLOB), "{token_len}");
            assert_eq!(blobs.len() > 1, token_len > 2400, "{token_len}");
            let back = decode(&join(&blobs).unwrap()).unwrap();
            assert_eq!(back.vars, resolved.vars);
            assert_eq!(back.opened_at, resolved.opened_at);
            assert_eq!(back.expires_at, resolved.expires_at);
            assert!(back.from_cache);
        }
    }

    #[test]
    fn damage_is_detected() {
        let blobs = split(&encode(&sample(3000))).unwrap();
        let mut torn = blobs.clone();
        torn[1][0] ^= 1;
        assert!(join(&torn).is_none(), "a changed byte");
        assert!(join(&blobs[..1]).is_none(), "a missing blob");
        assert!(join(&[b"not ours".to_vec()]).is_none(), "a foreign value");
        let payload = encode(&sample(5));
        assert!(
            decode(&payload[..payload.len() - 1]).is_none(),
            "a short payload"
        );
        assert!(decode(b"EHC1").is_none());
    }
}
