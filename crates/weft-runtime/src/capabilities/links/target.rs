//! Where a link's target leads, read as text.

/// A symbolic link's target, by where it can lead from the link's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Relative: `climb` leading `..`, then only names (and `.`). It stays under the
    /// directory `climb` levels above the link's, whatever the names are: each name is
    /// a directory below, or a link held to the same rule.
    Relative {
        /// How many leading `..`.
        climb: usize,
    },
    /// Relative, with a `..` after a name: where it leads depends on what that name
    /// is when it is followed (a link to elsewhere moves the `..`). `climb` is how far
    /// it climbs if every name is a plain directory.
    Tangled {
        /// The furthest it climbs above the link's directory, read as text.
        climb: usize,
    },
    /// Absolute: out of any workspace.
    Absolute,
}

/// Reads `target` (bytes: a target made on the host need not be UTF-8).
pub(crate) fn parse_target(target: &[u8]) -> Target {
    if target.first() == Some(&b'/') {
        return Target::Absolute;
    }
    let mut depth: isize = 0;
    let mut lowest: isize = 0;
    let mut named = false;
    let mut tangled = false;
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                tangled |= named;
                depth -= 1;
                lowest = lowest.min(depth);
            }
            _ => {
                named = true;
                depth += 1;
            }
        }
    }
    let climb = lowest.unsigned_abs();
    if tangled {
        Target::Tangled { climb }
    } else {
        Target::Relative { climb }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_by_their_climb() {
        let relative = |climb| Target::Relative { climb };
        let tangled = |climb| Target::Tangled { climb };
        for (target, want) in [
            ("file", relative(0)),
            ("./a/./b/", relative(0)),
            ("", relative(0)),
            ("..", relative(1)),
            ("../x", relative(1)),
            ("../../etc/passwd", relative(2)),
            ("./../.././x", relative(2)),
            ("a/../../x", tangled(1)),
            ("a/..", tangled(0)),
            ("a/b/../../../../x", tangled(2)),
            ("/etc/passwd", Target::Absolute),
            ("//x", Target::Absolute),
        ] {
            assert_eq!(parse_target(target.as_bytes()), want, "{target}");
        }
    }
}
