//! Pure logic shared by weft's first-party form decorators: templates over params
//! ([`render`], used by `derive-params` and `http-token`) and glob patterns ([`glob`],
//! used by `require-params`). No I/O, no wit-bindgen: unit-tested on the host.
//!
//! # Templates
//!
//! Text with `$(params.NAME)` references, each optionally followed by filters:
//! `$(params.commit | head:7)`, `$(params.branch | slug)`. `$$(` writes a literal `$(`.
//! Filters, applied left to right:
//!
//! | filter | result |
//! |---|---|
//! | `lower`, `upper` | the value in lower or upper case |
//! | `trim` | without leading and trailing white space |
//! | `slug` | lower case, every run of characters other than `a-z0-9` turned into one `-`, no `-` at either end |
//! | `head:N`, `tail:N` | the first or last `N` characters |
//! | `replace:FROM:TO` | every `FROM` replaced by `TO` |
//! | `default:TEXT` | `TEXT` when the param is missing or empty |
//!
//! A reference to a missing param is an error unless a `default:` filter follows it.

#![forbid(unsafe_code)]

/// What a template reference found for a param name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A string value.
    Str(String),
    /// The param is set but is not a string (an array or object).
    NotString,
    /// The param is not set.
    Missing,
}

/// Renders `template`, resolving `$(params.NAME)` with `lookup`. Errors name the problem
/// (an unknown filter, an unterminated reference, a missing or non-string param).
pub fn render(template: &str, lookup: &dyn Fn(&str) -> Lookup) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(tail) = after.strip_prefix("$$(") {
            out.push_str("$(");
            rest = tail;
            continue;
        }
        let Some(inner_and_tail) = after.strip_prefix("$(") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = inner_and_tail.find(')') else {
            return Err(format!("unterminated `$(` in template {template:?}"));
        };
        out.push_str(&reference(&inner_and_tail[..end], lookup)?);
        rest = &inner_and_tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Evaluates the inside of one `$( ... )`.
fn reference(inner: &str, lookup: &dyn Fn(&str) -> Lookup) -> Result<String, String> {
    let mut parts = inner.split('|').map(str::trim);
    let head = parts.next().unwrap_or_default();
    let Some(name) = head.strip_prefix("params.") else {
        return Err(format!(
            "`$({inner})`: only `$(params.NAME)` references are supported"
        ));
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("`$({inner})`: `{name}` is not a param name"));
    }
    let filters: Vec<&str> = parts.collect();
    let default = filters.iter().find_map(|f| f.strip_prefix("default:"));
    let mut value = match lookup(name) {
        Lookup::Str(value) => value,
        Lookup::NotString => {
            return Err(format!(
                "`$({inner})`: param `{name}` is not a string (arrays and objects cannot be templated)"
            ));
        }
        Lookup::Missing => match default {
            Some(_) => String::new(),
            None => return Err(format!("`$({inner})`: param `{name}` is not set")),
        },
    };
    for filter in filters {
        value = apply(filter, value).map_err(|e| format!("`$({inner})`: {e}"))?;
    }
    Ok(value)
}

fn count(arg: &str, filter: &str) -> Result<usize, String> {
    arg.parse()
        .map_err(|_| format!("`{filter}` needs a number of characters, e.g. `{filter}:7`"))
}

/// Applies one filter.
fn apply(filter: &str, value: String) -> Result<String, String> {
    let (name, arg) = match filter.split_once(':') {
        Some((name, arg)) => (name, Some(arg)),
        None => (filter, None),
    };
    Ok(match (name, arg) {
        ("lower", None) => value.to_lowercase(),
        ("upper", None) => value.to_uppercase(),
        ("trim", None) => value.trim().to_string(),
        ("slug", None) => slug(&value),
        ("head", Some(n)) => value.chars().take(count(n, "head")?).collect(),
        ("tail", Some(n)) => {
            let n = count(n, "tail")?;
            let len = value.chars().count();
            value.chars().skip(len.saturating_sub(n)).collect()
        }
        ("replace", Some(arg)) => {
            let Some((from, to)) = arg.split_once(':') else {
                return Err("`replace` needs `replace:FROM:TO`".to_string());
            };
            if from.is_empty() {
                return Err("`replace:FROM:TO` needs a non-empty FROM".to_string());
            }
            value.replace(from, to)
        }
        ("default", Some(text)) => {
            if value.is_empty() {
                text.to_string()
            } else {
                value
            }
        }
        _ => {
            return Err(format!(
                "unknown filter `{filter}` (known: lower, upper, trim, slug, head:N, tail:N, replace:FROM:TO, default:TEXT)"
            ));
        }
    })
}

/// Lower case, runs of characters other than `a-z0-9` as one `-`, trimmed of `-`.
pub fn slug(value: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in value.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    out
}

/// Whether `text` matches the glob `pattern`: `*` matches any run of characters
/// (including `/`), `?` exactly one character, `\` escapes the next character; everything
/// else matches itself. The whole text must match.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<Token> = tokens(pattern);
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point (the last `*`): linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Any) => {
                p += 1;
                t += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Token::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|token| *token == Token::Star)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::Star,
            '?' => Token::Any,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str) -> Lookup {
        match name {
            "commit" => Lookup::Str("0123456789abcdef".into()),
            "branch" => Lookup::Str("Feature/Login_Page".into()),
            "empty" => Lookup::Str(String::new()),
            "files" => Lookup::NotString,
            _ => Lookup::Missing,
        }
    }

    fn r(template: &str) -> Result<String, String> {
        render(template, &params)
    }

    #[test]
    fn renders_references_and_filters() {
        assert_eq!(r("plain").as_deref(), Ok("plain"));
        assert_eq!(r("$(params.commit)").as_deref(), Ok("0123456789abcdef"));
        assert_eq!(
            r("app:$(params.commit | head:7)").as_deref(),
            Ok("app:0123456")
        );
        assert_eq!(r("$(params.commit|tail:4|upper)").as_deref(), Ok("CDEF"));
        assert_eq!(
            r("$(params.branch | slug)").as_deref(),
            Ok("feature-login-page")
        );
        assert_eq!(
            r("$(params.branch | lower | replace:/:-)").as_deref(),
            Ok("feature-login_page")
        );
        assert_eq!(r("$(params.missing | default:x)").as_deref(), Ok("x"));
        assert_eq!(r("$(params.empty | default:y)").as_deref(), Ok("y"));
        assert_eq!(
            r("cost: $5, $$(params.x)").as_deref(),
            Ok("cost: $5, $(params.x)")
        );
        assert_eq!(
            r("$(params.commit | head:99)").as_deref(),
            Ok("0123456789abcdef")
        );
        assert_eq!(r("€$(params.commit | head:1)€").as_deref(), Ok("€0€"));
    }

    #[test]
    fn template_errors_say_what_is_wrong() {
        let err = |t: &str| r(t).err().unwrap_or_default();
        assert!(err("$(params.missing)").contains("not set"));
        assert!(err("$(params.files)").contains("not a string"));
        assert!(err("$(params.commit | shout)").contains("unknown filter `shout`"));
        assert!(err("$(params.commit | head:x)").contains("head:7"));
        assert!(err("$(params.commit").contains("unterminated"));
        assert!(err("$(tasks.a.results.b)").contains("only `$(params.NAME)`"));
        assert!(err("$(params.a b)").contains("not a param name"));
        assert!(err("$(params.commit | replace:x)").contains("FROM:TO"));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("--Hello, World!--"), "hello-world");
        assert_eq!(slug("release/1.2"), "release-1-2");
        assert_eq!(slug("***"), "");
    }

    #[test]
    fn globs_match_whole_strings() {
        assert!(glob("main", "main"));
        assert!(!glob("main", "main2"));
        assert!(glob("release/*", "release/1.2"));
        assert!(glob("release/*", "release/"));
        assert!(!glob("release/*", "releases/1"));
        assert!(glob("*", ""));
        assert!(glob("feat-??", "feat-42"));
        assert!(!glob("feat-??", "feat-4"));
        assert!(glob("*-hotfix-*", "v1-hotfix-2"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("lit\\*", "lit*"));
        assert!(!glob("lit\\*", "lit-x"));
        assert!(glob("**", "anything/at/all"));
        // No exponential blow-up on adversarial patterns.
        let text = "a".repeat(10_000);
        assert!(!glob("*a*a*a*a*a*a*a*b", &text));
    }
}
