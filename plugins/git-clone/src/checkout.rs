//! Writing a commit's tree into a directory. Names from the server are checked: no
//! `..`, `.git`, separators or empty names, so a hostile repository cannot write outside
//! the target (the host's preopens confine it to the workspace anyway).

use std::path::Path;

use crate::pack::{Kind, Objects, Oid, parse_hex};

/// What a commit says of itself.
pub struct Commit {
    /// Its tree.
    pub tree: Oid,
    /// The committer's date, seconds since the epoch.
    pub committer_time: Option<i64>,
}

/// Parses the commit `oid` among `objects`.
pub fn commit(objects: &Objects, oid: &Oid) -> Result<Commit, String> {
    let Some((Kind::Commit, data)) = objects.get(oid) else {
        return Err(format!(
            "the server's pack has no commit {}",
            crate::pack::hex(oid)
        ));
    };
    let text = String::from_utf8_lossy(data);
    let mut tree = None;
    let mut committer_time = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix("tree ") {
            tree = parse_hex(hex.trim());
        }
        if let Some(who) = line.strip_prefix("committer ") {
            committer_time = who
                .rsplit(' ')
                .nth(1)
                .and_then(|seconds| seconds.parse().ok());
        }
    }
    Ok(Commit {
        tree: tree.ok_or("the commit names no tree")?,
        committer_time,
    })
}

/// What a checkout wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// Files written.
    pub files: usize,
    /// Symlinks and submodules left out.
    pub skipped: Vec<String>,
    /// Each file as the git index lists it: path, mode, id, size.
    pub entries: Vec<(String, u32, Oid, u32)>,
}

/// Writes tree `tree` into `dir` (which exists).
pub fn write_tree(
    objects: &Objects,
    tree: &Oid,
    dir: &Path,
    shown: &str,
    written: &mut Written,
) -> Result<(), String> {
    let Some((Kind::Tree, data)) = objects.get(tree) else {
        return Err(format!(
            "the server's pack has no tree {}",
            crate::pack::hex(tree)
        ));
    };
    let mut at = 0;
    while at < data.len() {
        let space = data[at..]
            .iter()
            .position(|b| *b == b' ')
            .ok_or("a tree entry has no mode")?;
        let mode =
            std::str::from_utf8(&data[at..at + space]).map_err(|_| "a tree mode is not text")?;
        at += space + 1;
        let nul = data[at..]
            .iter()
            .position(|b| *b == 0)
            .ok_or("a tree entry has no name")?;
        let name = std::str::from_utf8(&data[at..at + nul])
            .map_err(|_| "a file name in the tree is not UTF-8")?
            .to_string();
        at += nul + 1;
        let oid: Oid = data
            .get(at..at + 20)
            .and_then(|b| b.try_into().ok())
            .ok_or("a tree entry is cut short")?;
        at += 20;
        check_name(&name)?;
        let path = dir.join(&name);
        let shown_path = if shown.is_empty() {
            name.clone()
        } else {
            format!("{shown}/{name}")
        };
        match mode {
            "40000" | "040000" => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| format!("cannot create {shown_path}: {e}"))?;
                write_tree(objects, &oid, &path, &shown_path, written)?;
            }
            "100644" | "100755" | "100664" => {
                let Some((Kind::Blob, content)) = objects.get(&oid) else {
                    return Err(format!("the server's pack has no content for {shown_path}"));
                };
                std::fs::write(&path, content)
                    .map_err(|e| format!("cannot write {shown_path}: {e}"))?;
                written.files += 1;
                let mode = if mode == "100755" { 0o100755 } else { 0o100644 };
                let size = u32::try_from(content.len()).unwrap_or(u32::MAX);
                written.entries.push((shown_path, mode, oid, size));
            }
            "120000" => written.skipped.push(format!("{shown_path} (symlink)")),
            "160000" => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| format!("cannot create {shown_path}: {e}"))?;
                written.skipped.push(format!("{shown_path} (submodule)"));
            }
            other => return Err(format!("{shown_path} has an unknown mode {other}")),
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.eq_ignore_ascii_case(".git")
        || name.contains(['/', '\\', '\0']);
    if bad {
        Err(format!(
            "the repository holds a path weft will not write: `{}`",
            name.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// Empties `dir` (keeping it).
pub fn empty_dir(dir: &Path) -> Result<(), String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let removed = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for name in ["", ".", "..", ".git", ".GIT", "a/b", "a\\b"] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name(".github").is_ok());
    }
}
