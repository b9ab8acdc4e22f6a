//! The `.git` directory of a checkout, so `git log`, `git describe` and `git status` work
//! on it: the pack as fetched with its index (`pack.rs`), `HEAD` detached at the commit,
//! `shallow` for a shallow fetch, the origin remote, and an index of the files written.
//! The sandbox cannot set executable bits, so `core.filemode` is off: the index keeps
//! each file's mode as committed.

use std::path::Path;

use sha1::{Digest, Sha1};

use crate::pack::{self, Oid, Pack};

/// Writes `target/.git`.
pub fn write(
    target: &Path,
    raw_pack: &[u8],
    pack: &Pack,
    head: &Oid,
    shallow: &[Oid],
    url: &str,
    entries: &[(String, u32, Oid, u32)],
) -> Result<(), String> {
    let git = target.join(".git");
    let failed = |what: &str, e: std::io::Error| format!("cannot write .git/{what}: {e}");
    for dir in [
        "objects/pack",
        "objects/info",
        "refs/heads",
        "refs/tags",
        "info",
    ] {
        std::fs::create_dir_all(git.join(dir)).map_err(|e| failed(dir, e))?;
    }
    let name = format!("objects/pack/pack-{}", pack::hex(&pack.checksum));
    let files: Vec<(String, Vec<u8>)> = vec![
        (format!("{name}.pack"), raw_pack.to_vec()),
        (format!("{name}.idx"), pack::index(pack)),
        ("HEAD".into(), format!("{}\n", pack::hex(head)).into_bytes()),
        (
            "config".into(),
            format!(
                "[core]\n\trepositoryformatversion = 0\n\tfilemode = false\n\tbare = false\n[remote \"origin\"]\n\turl = {url}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
            )
            .into_bytes(),
        ),
        ("index".into(), index(entries)),
    ];
    for (path, bytes) in files {
        std::fs::write(git.join(&path), bytes).map_err(|e| failed(&path, e))?;
    }
    if !shallow.is_empty() {
        let text: String = shallow
            .iter()
            .map(|oid| format!("{}\n", pack::hex(oid)))
            .collect();
        std::fs::write(git.join("shallow"), text).map_err(|e| failed("shallow", e))?;
    }
    Ok(())
}

/// A version 2 index of `entries` with empty stat data (git re-reads such files on the
/// next `git status` and finds them unchanged).
fn index(entries: &[(String, u32, Oid, u32)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, u32, Oid, u32)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = b"DIRC".to_vec();
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_be_bytes());
    for (path, mode, oid, size) in sorted {
        let start = out.len();
        out.extend_from_slice(&[0u8; 24]); // ctime, mtime, dev, ino
        out.extend_from_slice(&mode.to_be_bytes());
        out.extend_from_slice(&[0u8; 8]); // uid, gid
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(oid);
        let flags = path.len().min(0xfff) as u16;
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(path.as_bytes());
        let len = out.len() - start;
        let padded = (len + 8) & !7;
        out.resize(start + padded, 0);
    }
    let sum: [u8; 20] = Sha1::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}
