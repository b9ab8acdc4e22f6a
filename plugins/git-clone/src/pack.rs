//! Git packfiles (version 2): entries inflated, deltas (`ofs-delta`, `ref-delta`)
//! applied, every object named by the SHA-1 of its header and content.

use std::collections::HashMap;
use std::io::Read;

use sha1::{Digest, Sha1};

/// An object id.
pub type Oid = [u8; 20];

/// Object kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A commit.
    Commit,
    /// A tree.
    Tree,
    /// A blob.
    Blob,
    /// An annotated tag.
    Tag,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Tag => "tag",
        }
    }
}

/// Every object of a pack, by id.
pub type Objects = HashMap<Oid, (Kind, Vec<u8>)>;

/// The largest object inflated (a pack header could claim anything).
const MAX_OBJECT: usize = 512 << 20;

/// The id git gives `data` of `kind`.
pub fn object_id(kind: Kind, data: &[u8]) -> Oid {
    let mut hash = Sha1::new();
    hash.update(format!("{} {}\0", kind.name(), data.len()).as_bytes());
    hash.update(data);
    hash.finalize().into()
}

/// Lower-case hex of an id.
pub fn hex(oid: &Oid) -> String {
    oid.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 40 hex digits.
pub fn parse_hex(text: &str) -> Option<Oid> {
    if text.len() != 40 {
        return None;
    }
    let mut oid = [0u8; 20];
    for (i, byte) in oid.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(oid)
}

enum Entry {
    Whole(Kind, Vec<u8>),
    OfsDelta(usize, Vec<u8>),
    RefDelta(Oid, Vec<u8>),
}

/// A pack read: its objects, and for an index of it each object's offset and CRC-32.
pub struct Pack {
    /// Every object, by id.
    pub objects: Objects,
    /// `(id, offset, CRC-32 of the entry's bytes)`, in pack order.
    pub entries: Vec<(Oid, u64, u32)>,
    /// The pack's trailing SHA-1.
    pub checksum: Oid,
}

/// Reads a whole pack (checking its trailing SHA-1).
pub fn parse(pack: &[u8]) -> Result<Pack, String> {
    if pack.len() < 32 || &pack[..4] != b"PACK" {
        return Err("the server's pack does not start with `PACK`".into());
    }
    let version = u32::from_be_bytes([pack[4], pack[5], pack[6], pack[7]]);
    if version != 2 && version != 3 {
        return Err(format!("pack version {version} is not supported"));
    }
    let count = u32::from_be_bytes([pack[8], pack[9], pack[10], pack[11]]) as usize;
    let (body, trailer) = pack.split_at(pack.len() - 20);
    let sum: [u8; 20] = Sha1::digest(body).into();
    if sum != trailer {
        return Err("the pack's checksum does not match its content".into());
    }
    let mut at = 12;
    let mut by_offset: HashMap<usize, Oid> = HashMap::new();
    let mut objects: Objects = HashMap::new();
    let mut pending: Vec<(usize, Entry)> = Vec::new();
    let mut crcs: Vec<(usize, u32)> = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let start = at;
        let entry = read_entry(body, &mut at)?;
        let mut crc = flate2::Crc::new();
        crc.update(&body[start..at]);
        crcs.push((start, crc.sum()));
        match entry {
            Entry::Whole(kind, data) => {
                let oid = object_id(kind, &data);
                by_offset.insert(start, oid);
                objects.insert(oid, (kind, data));
            }
            Entry::OfsDelta(back, delta) => {
                let base = start
                    .checked_sub(back)
                    .ok_or("an ofs-delta points before the pack")?;
                match by_offset.get(&base).and_then(|oid| objects.get(oid)) {
                    Some((kind, base)) => {
                        let kind = *kind;
                        let data = apply_delta(base, &delta)?;
                        let oid = object_id(kind, &data);
                        by_offset.insert(start, oid);
                        objects.insert(oid, (kind, data));
                    }
                    None => pending.push((start, Entry::OfsDelta(base, delta))),
                }
            }
            Entry::RefDelta(base, delta) => pending.push((start, Entry::RefDelta(base, delta))),
        }
    }
    // Deltas whose base came later (ref-deltas, or bases that were deltas themselves).
    while !pending.is_empty() {
        let before = pending.len();
        let mut left = Vec::new();
        for (start, entry) in pending {
            let base = match &entry {
                Entry::OfsDelta(base_at, _) => by_offset.get(base_at).and_then(|o| objects.get(o)),
                Entry::RefDelta(oid, _) => objects.get(oid),
                Entry::Whole(..) => None,
            };
            match (base, &entry) {
                (Some((kind, base)), Entry::OfsDelta(_, delta) | Entry::RefDelta(_, delta)) => {
                    let kind = *kind;
                    let data = apply_delta(base, delta)?;
                    let oid = object_id(kind, &data);
                    by_offset.insert(start, oid);
                    objects.insert(oid, (kind, data));
                }
                _ => left.push((start, entry)),
            }
        }
        if left.len() == before {
            return Err(format!(
                "{} deltas in the pack have no base (a thin pack?)",
                left.len()
            ));
        }
        pending = left;
    }
    let entries = crcs
        .into_iter()
        .filter_map(|(start, crc)| by_offset.get(&start).map(|oid| (*oid, start as u64, crc)))
        .collect();
    Ok(Pack {
        objects,
        entries,
        checksum: sum,
    })
}

/// A version 2 pack index (`.idx`) for `pack`, as `git index-pack` writes it.
pub fn index(pack: &Pack) -> Vec<u8> {
    let mut entries = pack.entries.clone();
    entries.sort_by_key(|entry| entry.0);
    let mut out = vec![0xff, b't', b'O', b'c', 0, 0, 0, 2];
    let mut fanout = [0u32; 256];
    for (oid, _, _) in &entries {
        fanout[oid[0] as usize] += 1;
    }
    let mut total = 0u32;
    for count in fanout {
        total += count;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for (oid, _, _) in &entries {
        out.extend_from_slice(oid);
    }
    for (_, _, crc) in &entries {
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for (_, offset, _) in &entries {
        match u32::try_from(*offset) {
            Ok(small) if small < 0x8000_0000 => out.extend_from_slice(&small.to_be_bytes()),
            _ => {
                out.extend_from_slice(&(0x8000_0000u32 | large.len() as u32).to_be_bytes());
                large.push(*offset);
            }
        }
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(&pack.checksum);
    let sum: [u8; 20] = Sha1::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

fn read_entry(body: &[u8], at: &mut usize) -> Result<Entry, String> {
    let mut byte = *body.get(*at).ok_or("the pack ends inside an entry")?;
    *at += 1;
    let kind = (byte >> 4) & 7;
    let mut size = (byte & 15) as usize;
    let mut shift = 4;
    while byte & 0x80 != 0 {
        byte = *body.get(*at).ok_or("the pack ends inside an entry")?;
        *at += 1;
        if shift > 56 {
            return Err("an entry's size is too large".into());
        }
        size |= ((byte & 0x7f) as usize) << shift;
        shift += 7;
    }
    if size > MAX_OBJECT {
        return Err(format!("an object of {size} bytes is too large"));
    }
    let mut whole =
        |kind| -> Result<Entry, String> { Ok(Entry::Whole(kind, inflate(body, at, size)?)) };
    match kind {
        1 => whole(Kind::Commit),
        2 => whole(Kind::Tree),
        3 => whole(Kind::Blob),
        4 => whole(Kind::Tag),
        6 => {
            let mut byte = *body.get(*at).ok_or("the pack ends inside an entry")?;
            *at += 1;
            let mut back = (byte & 0x7f) as usize;
            while byte & 0x80 != 0 {
                byte = *body.get(*at).ok_or("the pack ends inside an entry")?;
                *at += 1;
                back = back
                    .checked_add(1)
                    .and_then(|b| b.checked_mul(128))
                    .ok_or("an ofs-delta offset is too large")?
                    | (byte & 0x7f) as usize;
            }
            Ok(Entry::OfsDelta(back, inflate(body, at, size)?))
        }
        7 => {
            let base: Oid = body
                .get(*at..*at + 20)
                .and_then(|b| b.try_into().ok())
                .ok_or("the pack ends inside a ref-delta")?;
            *at += 20;
            Ok(Entry::RefDelta(base, inflate(body, at, size)?))
        }
        other => Err(format!("unknown pack entry type {other}")),
    }
}

fn inflate(body: &[u8], at: &mut usize, size: usize) -> Result<Vec<u8>, String> {
    let input = body.get(*at..).ok_or("the pack ends inside an entry")?;
    let mut decoder = flate2::bufread::ZlibDecoder::new(input);
    let mut out = Vec::with_capacity(size);
    decoder
        .by_ref()
        .take(size as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("a pack entry does not inflate: {e}"))?;
    if out.len() != size {
        return Err(format!(
            "a pack entry inflates to {} bytes, not the {size} its header says",
            out.len()
        ));
    }
    *at += decoder.total_in() as usize;
    Ok(out)
}

fn delta_size(delta: &[u8], at: &mut usize) -> Result<usize, String> {
    let mut size = 0usize;
    let mut shift = 0;
    loop {
        let byte = *delta.get(*at).ok_or("a delta ends inside its header")?;
        *at += 1;
        if shift > 56 {
            return Err("a delta's size is too large".into());
        }
        size |= ((byte & 0x7f) as usize) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(size);
        }
    }
}

/// Applies a git delta to `base`.
pub fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, String> {
    let mut at = 0;
    let base_size = delta_size(delta, &mut at)?;
    if base_size != base.len() {
        return Err("a delta was made for another base".into());
    }
    let size = delta_size(delta, &mut at)?;
    if size > MAX_OBJECT {
        return Err(format!("a delta result of {size} bytes is too large"));
    }
    let mut out = Vec::with_capacity(size);
    while at < delta.len() {
        let op = delta[at];
        at += 1;
        if op & 0x80 != 0 {
            let mut offset = 0usize;
            let mut len = 0usize;
            for i in 0..4 {
                if op & (1 << i) != 0 {
                    offset |=
                        (*delta.get(at).ok_or("a delta copy is cut short")? as usize) << (8 * i);
                    at += 1;
                }
            }
            for i in 0..3 {
                if op & (0x10 << i) != 0 {
                    len |= (*delta.get(at).ok_or("a delta copy is cut short")? as usize) << (8 * i);
                    at += 1;
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            let chunk = offset
                .checked_add(len)
                .and_then(|end| base.get(offset..end))
                .ok_or("a delta copies from outside its base")?;
            out.extend_from_slice(chunk);
        } else if op != 0 {
            let chunk = delta
                .get(at..at + op as usize)
                .ok_or("a delta insert is cut short")?;
            out.extend_from_slice(chunk);
            at += op as usize;
        } else {
            return Err("a delta has a reserved instruction 0".into());
        }
        if out.len() > size {
            return Err("a delta writes more than its declared size".into());
        }
    }
    if out.len() != size {
        return Err("a delta's result has the wrong size".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).expect("deflate");
        encoder.finish().expect("deflate")
    }

    fn header(kind: u8, size: usize) -> Vec<u8> {
        let mut out = vec![(kind << 4) | (size as u8 & 15)];
        let mut rest = size >> 4;
        if rest > 0 {
            out[0] |= 0x80;
        }
        while rest > 0 {
            let mut byte = (rest & 0x7f) as u8;
            rest >>= 7;
            if rest > 0 {
                byte |= 0x80;
            }
            out.push(byte);
        }
        out
    }

    #[test]
    fn a_pack_with_an_ofs_delta_resolves_and_ids_match_git() {
        let base = b"hello world\n".to_vec();
        // Delta: base size 12, result size 18: copy 0..12, insert "again\n".
        let mut delta = vec![12, 18, 0x80 | 0x01 | 0x10, 0, 12, 6];
        delta.extend_from_slice(b"again\n");
        let mut body = b"PACK".to_vec();
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(&2u32.to_be_bytes());
        let first = body.len();
        body.extend(header(3, base.len()));
        body.extend(deflate(&base));
        let second = body.len();
        body.extend(header(6, delta.len()));
        body.push((second - first) as u8);
        body.extend(deflate(&delta));
        let sum: [u8; 20] = Sha1::digest(&body).into();
        body.extend_from_slice(&sum);
        let objects = parse(&body).expect("parses").objects;
        // `git hash-object` of "hello world\n".
        let id = parse_hex("3b18e512dba79e4c8300dd08aeb37f8e728b8dad").expect("hex");
        assert_eq!(
            objects.get(&id).map(|(k, d)| (*k, d.clone())),
            Some((Kind::Blob, base))
        );
        assert!(objects.values().any(|(_, d)| d == b"hello world\nagain\n"));

        let mut broken = body.clone();
        let last = broken.len() - 1;
        broken[last] ^= 1;
        assert!(parse(&broken).is_err(), "a bad checksum is refused");
    }

    #[test]
    fn hostile_deltas_are_errors() {
        assert!(apply_delta(b"abc", &[3, 5, 0x80 | 0x01 | 0x10, 2, 5]).is_err());
        assert!(apply_delta(b"abc", &[4, 1, 1, b'x']).is_err());
        assert!(apply_delta(b"abc", &[3, 1, 0]).is_err());
        assert_eq!(
            apply_delta(b"abc", &[3, 2, 0x80 | 0x01 | 0x10, 1, 2]).as_deref(),
            Ok(&b"bc"[..])
        );
    }
}
