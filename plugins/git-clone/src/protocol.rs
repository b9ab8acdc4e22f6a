//! Git's protocol v2 over smart HTTP, as pure functions: the requests' bodies, the
//! answers' parsing, and which object a revision names.

use crate::pack::{Oid, parse_hex};
use crate::pktline::{self, Pkt, Reader};

/// One advertised ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// `refs/heads/main`, `HEAD`, ...
    pub name: String,
    /// What it points at.
    pub oid: Oid,
    /// For an annotated tag: the commit it points at.
    pub peeled: Option<Oid>,
}

/// Checks the capability advertisement (`GET info/refs`) says protocol v2 with `fetch`.
pub fn check_advertisement(body: &[u8]) -> Result<(), String> {
    let mut reader = Reader::new(body);
    let mut version2 = false;
    let mut fetch = false;
    while let Some(pkt) = reader.next_pkt()? {
        if let Pkt::Data(payload) = pkt {
            let line = pktline::text(payload);
            if line == "version 2" {
                version2 = true;
            }
            if line == "fetch" || line.starts_with("fetch=") {
                fetch = true;
            }
        }
    }
    match (version2, fetch) {
        (true, true) => Ok(()),
        (false, _) => Err(
            "the server does not speak git protocol version 2 (git 2.18 or later serves it)".into(),
        ),
        (true, false) => Err("the server does not offer `fetch`".into()),
    }
}

/// The `ls-refs` request for HEAD, branches, tags and `extra` prefixes.
pub fn ls_refs_request(extra: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    pktline::line(&mut out, "command=ls-refs\n");
    pktline::line(&mut out, "agent=weft-git-clone\n");
    pktline::delim(&mut out);
    pktline::line(&mut out, "peel\n");
    pktline::line(&mut out, "symrefs\n");
    for prefix in ["HEAD", "refs/heads/", "refs/tags/"]
        .into_iter()
        .map(str::to_string)
        .chain(extra.iter().cloned())
    {
        pktline::line(&mut out, &format!("ref-prefix {prefix}\n"));
    }
    pktline::flush(&mut out);
    out
}

/// Parses an `ls-refs` answer.
pub fn parse_refs(body: &[u8]) -> Result<Vec<Ref>, String> {
    let mut reader = Reader::new(body);
    let mut refs = Vec::new();
    while let Some(pkt) = reader.next_pkt()? {
        let Pkt::Data(payload) = pkt else { break };
        let line = pktline::text(payload);
        if let Some(message) = line.strip_prefix("ERR ") {
            return Err(format!("the server refused to list refs: {message}"));
        }
        let mut words = line.split(' ');
        let oid = words.next().and_then(parse_hex);
        let name = words.next();
        let (Some(oid), Some(name)) = (oid, name) else {
            continue; // `unborn HEAD` and the like
        };
        let peeled = words
            .filter_map(|w| w.strip_prefix("peeled:"))
            .find_map(parse_hex);
        refs.push(Ref {
            name: name.to_string(),
            oid,
            peeled,
        });
    }
    Ok(refs)
}

/// The commit `revision` names among `refs` (Tekton's rules: empty is the default
/// branch; a branch, a tag, a full ref name, or a commit SHA).
pub fn resolve(revision: &str, refs: &[Ref]) -> Result<Oid, String> {
    let revision = revision.trim();
    if let Some(oid) = parse_hex(revision) {
        return Ok(oid);
    }
    let wanted: Vec<String> = if revision.is_empty() || revision == "HEAD" {
        vec!["HEAD".into()]
    } else if revision.starts_with("refs/") {
        vec![revision.to_string()]
    } else {
        vec![
            format!("refs/heads/{revision}"),
            format!("refs/tags/{revision}"),
            revision.to_string(),
        ]
    };
    for name in &wanted {
        if let Some(found) = refs.iter().find(|r| &r.name == name) {
            return Ok(found.peeled.unwrap_or(found.oid));
        }
    }
    let mut known: Vec<&str> = refs
        .iter()
        .filter_map(|r| {
            r.name
                .strip_prefix("refs/heads/")
                .or_else(|| r.name.strip_prefix("refs/tags/"))
        })
        .collect();
    known.truncate(20);
    Err(format!(
        "revision `{revision}` is not a branch, tag or commit SHA of the repository (it has: {})",
        if known.is_empty() {
            "no branches or tags".to_string()
        } else {
            known.join(", ")
        }
    ))
}

/// The `fetch` request for `want`, `depth` commits deep (0: whole history).
pub fn fetch_request(want: &Oid, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    pktline::line(&mut out, "command=fetch\n");
    pktline::line(&mut out, "agent=weft-git-clone\n");
    pktline::delim(&mut out);
    pktline::line(&mut out, "no-progress\n");
    pktline::line(&mut out, "ofs-delta\n");
    pktline::line(&mut out, &format!("want {}\n", crate::pack::hex(want)));
    if depth > 0 {
        pktline::line(&mut out, &format!("deepen {depth}\n"));
    }
    pktline::line(&mut out, "done\n");
    pktline::flush(&mut out);
    out
}

/// A `fetch` answer: the pack (side-band demultiplexed) and the commits the server
/// made shallow.
pub struct Fetched {
    /// The packfile.
    pub pack: Vec<u8>,
    /// `shallow` commits of the `shallow-info` section.
    pub shallow: Vec<Oid>,
}

/// The pack in a `fetch` answer (its `packfile` section, side-band demultiplexed).
pub fn pack_of(body: &[u8]) -> Result<Fetched, String> {
    let mut reader = Reader::new(body);
    let mut in_pack = false;
    let mut pack = Vec::new();
    let mut shallow = Vec::new();
    while let Some(pkt) = reader.next_pkt()? {
        match pkt {
            Pkt::Data(payload) if in_pack => match payload.split_first() {
                Some((1, data)) => pack.extend_from_slice(data),
                Some((2, _)) => {}
                Some((3, message)) => {
                    return Err(format!("the server failed: {}", pktline::text(message)));
                }
                _ => return Err("the pack's side-band is malformed".into()),
            },
            Pkt::Data(payload) => {
                let line = pktline::text(payload);
                if let Some(message) = line.strip_prefix("ERR ") {
                    return Err(format!("the server refused the fetch: {message}"));
                }
                if line == "packfile" {
                    in_pack = true;
                }
                if let Some(oid) = line.strip_prefix("shallow ").and_then(parse_hex) {
                    shallow.push(oid);
                }
            }
            Pkt::Flush if in_pack => break,
            _ => {}
        }
    }
    if !in_pack {
        return Err("the server's answer has no pack".into());
    }
    Ok(Fetched { pack, shallow })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(byte: u8) -> Oid {
        [byte; 20]
    }

    #[test]
    fn revisions_resolve_like_tekton_says() {
        let refs = vec![
            Ref {
                name: "HEAD".into(),
                oid: oid(1),
                peeled: None,
            },
            Ref {
                name: "refs/heads/main".into(),
                oid: oid(1),
                peeled: None,
            },
            Ref {
                name: "refs/heads/dev".into(),
                oid: oid(2),
                peeled: None,
            },
            Ref {
                name: "refs/tags/v1".into(),
                oid: oid(3),
                peeled: Some(oid(4)),
            },
        ];
        assert_eq!(resolve("", &refs), Ok(oid(1)));
        assert_eq!(resolve("dev", &refs), Ok(oid(2)));
        assert_eq!(resolve("refs/heads/dev", &refs), Ok(oid(2)));
        assert_eq!(resolve("v1", &refs), Ok(oid(4)), "an annotated tag peels");
        let sha = "0505050505050505050505050505050505050505";
        assert_eq!(resolve(sha, &refs), Ok(oid(5)));
        let err = resolve("nope", &refs).expect_err("unknown");
        assert!(err.contains("`nope`") && err.contains("dev"), "{err}");
    }

    #[test]
    fn answers_parse_and_errors_surface() {
        let mut body = Vec::new();
        pktline::line(
            &mut body,
            &format!("{} HEAD symref-target:refs/heads/main\n", "01".repeat(20)),
        );
        pktline::line(
            &mut body,
            &format!(
                "{} refs/tags/v1 peeled:{}\n",
                "03".repeat(20),
                "04".repeat(20)
            ),
        );
        pktline::flush(&mut body);
        let refs = parse_refs(&body).expect("parses");
        assert_eq!(refs[1].peeled, Some(oid(4)));

        let mut answer = Vec::new();
        pktline::line(&mut answer, "packfile\n");
        let mut data = vec![1u8];
        data.extend_from_slice(b"PACK");
        answer.extend_from_slice(format!("{:04x}", data.len() + 4).as_bytes());
        answer.extend_from_slice(&data);
        pktline::flush(&mut answer);
        assert_eq!(
            pack_of(&answer).map(|f| f.pack).as_deref(),
            Ok(&b"PACK"[..])
        );

        let mut refused = Vec::new();
        pktline::line(&mut refused, "ERR upload-pack: not our ref\n");
        assert!(pack_of(&refused).is_err_and(|e| e.contains("not our ref")));
        let mut v0 = Vec::new();
        pktline::line(&mut v0, "# service=git-upload-pack\n");
        assert!(check_advertisement(&v0).is_err());
    }
}
