//! `hostile` (test-only): tries to misbehave in the way its `mode` param names, so the
//! host's sandboxing and limits can be tested.
//!
//! Reporting convention (the host tests rely on it):
//! - the action was prevented (an error came back): `failure("blocked: <error>", 3)`;
//! - the action succeeded where it should not have: `failure("ESCAPED: <what>", 66)`;
//! - `canary-write` succeeds; `canary-read` that finds nothing succeeds with no message;
//! - `secret-print` (a granted secret reaching its task) prints the secret's value (the
//!   host must mask it) and succeeds with result `length`;
//! - `secret-split` logs the granted secret cut in two consecutive log calls, at every
//!   character, and `secret-encoded` logs and prints it hex- and JSON-encoded (the host
//!   must mask all of it); both succeed with result `lines`;
//! - `symlink-out` tries, in its workspace, every way to leave a link that leads out of
//!   it (after setting up links that stay inside): blocked only if every one failed;
//!   a failed set-up step is `failure("setup: <error>", 4)`;
//! - `symlink-inside` makes, follows, moves and hard-links links that stay inside its
//!   workspace: succeeds, or `failure("inside link refused: <error>", 5)`;
//! - modes the host is expected to kill (`loop`, `memory`, `recursion`, `flood`,
//!   `log-flood`, `huge-result`) just do their thing;
//! - `spin` (benchmarks) does a fixed amount of work, `spin-iterations` steps of a
//!   pseudo-random sequence, and succeeds with its last value as result `value`;
//! - an unknown mode is `failure("unknown mode", 2)`.

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use weft_sdk::{Context, Outcome, Param, PluginInfo, Task, Workspace};

const MODES: &[&str] = &[
    "loop",
    "huge-hostcall",
    "memory",
    "recursion",
    "flood",
    "log-flood",
    "huge-result",
    "read-passwd",
    "escape-dotdot",
    "escape-symlink",
    "symlink-out",
    "symlink-inside",
    "write-readonly",
    "secret",
    "secret-print",
    "secret-return",
    "secret-split",
    "secret-encoded",
    "http",
    "canary-write",
    "canary-read",
    "spin",
];

const DEFAULT_CANARY: &str = "WEFT-CANARY-5f0c2a9e-hostile";
const CANARY_HEAP_BYTES: usize = 16 << 20;
const STATIC_BYTES: usize = 1 << 20;

/// A static buffer: zero-initialised (bss), so it must read as zeroes in a fresh instance.
static STATIC_BUF: [AtomicU8; STATIC_BYTES] = [const { AtomicU8::new(0) }; STATIC_BYTES];

struct Hostile;

impl Task for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new("hostile", env!("CARGO_PKG_VERSION"))
            .description("Test-only: attempts the misbehaviour named by `mode`")
            .param(
                Param::string("mode")
                    .description("What to attempt")
                    .one_of(MODES.iter().copied()),
            )
            .param(
                Param::string("path")
                    .description("Unused; reserved")
                    .default(""),
            )
            .param(
                Param::string("url")
                    .description("URL for `http`")
                    .default("http://example.com/"),
            )
            .param(
                Param::string("secret")
                    .description("Secret name for `secret`")
                    .default("not-granted"),
            )
            .param(
                Param::string("via")
                    .description(
                        "How `secret-return` hands the secret back: success, warning, halt, skip, failure",
                    )
                    .default("success"),
            )
            .param(
                Param::string("bytes")
                    .description("Result size for `huge-result`")
                    .default((64u64 << 20).to_string()),
            )
            .param(
                Param::string("canary")
                    .description("Canary string for `canary-write` / `canary-read`")
                    .default(DEFAULT_CANARY),
            )
            .param(
                Param::string("spin-iterations")
                    .description("Steps of work for `spin`")
                    .default("100000000"),
            )
            .workspace(
                Workspace::new("ws")
                    .description("Workspace for the escape and write modes")
                    .optional(),
            )
            .results_fixed(false)
    }

    fn run(ctx: Context) -> Outcome {
        match ctx.param_or("mode", "") {
            "loop" => cpu_loop(),
            "memory" => memory(),
            "recursion" => {
                let depth = recurse(black_box(0));
                Outcome::failure(format!("ESCAPED: recursion returned at depth {depth}"), 66)
            }
            "flood" => flood(),
            "log-flood" => log_flood(),
            "huge-result" => huge_result(&ctx),
            "huge-hostcall" => huge_hostcall(&ctx),
            "read-passwd" => read_file(PathBuf::from("/etc/passwd")),
            "escape-dotdot" => read_file(workspace(&ctx).join("../../../../etc/passwd")),
            "escape-symlink" => escape_symlink(&ctx),
            "symlink-out" => symlink_out(&workspace(&ctx)),
            "symlink-inside" => symlink_inside(&workspace(&ctx)),
            "write-readonly" => write_readonly(&ctx),
            "secret" => secret(&ctx),
            "secret-print" => secret_print(&ctx),
            "secret-return" => secret_return(&ctx),
            "secret-split" => secret_split(&ctx),
            "secret-encoded" => secret_encoded(&ctx),
            "http" => http(&ctx),
            "canary-write" => canary_write(canary(&ctx)),
            "canary-read" => canary_read(canary(&ctx)),
            "spin" => spin(&ctx),
            _ => Outcome::failure("unknown mode", 2),
        }
    }
}

fn blocked(error: impl std::fmt::Display) -> Outcome {
    Outcome::failure(format!("blocked: {error}"), 3)
}

fn escaped(what: impl std::fmt::Display) -> Outcome {
    Outcome::failure(format!("ESCAPED: {what}"), 66)
}

fn workspace(ctx: &Context) -> PathBuf {
    ctx.workspace("ws")
        .unwrap_or_else(|| PathBuf::from("/workspace"))
}

fn canary(ctx: &Context) -> String {
    match ctx.param_or("canary", DEFAULT_CANARY) {
        "" => DEFAULT_CANARY.to_string(),
        c => c.to_string(),
    }
}

fn cpu_loop() -> Outcome {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// A fixed amount of work: `spin-iterations` steps of the loop `cpu_loop` never leaves.
fn spin(ctx: &Context) -> Outcome {
    let Ok(iterations) = ctx.param_or("spin-iterations", "100000000").parse::<u64>() else {
        return Outcome::failure("spin-iterations is not a whole number", 2);
    };
    let mut n: u64 = 0;
    for _ in 0..iterations {
        n = black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    Outcome::success().result("value", n.to_string())
}

fn memory() -> Outcome {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 8 << 20];
        for byte in chunk.iter_mut().step_by(4096) {
            *byte = 1;
        }
        hoard.push(black_box(chunk));
    }
}

/// The next level of [`recurse`], read with a volatile load so the compiler cannot see
/// that the call is recursive (and turn it into a loop).
static RECURSE: fn(u64) -> u64 = recurse;

/// Unbounded recursion on the wasm call stack (not the linear-memory shadow stack: no
/// locals live in memory), so it ends in the engine's stack-overflow trap.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    // SAFETY: a plain read of an initialised static.
    #[allow(unsafe_code)]
    let next = unsafe { std::ptr::read_volatile(&RECURSE) };
    next(depth + 1).wrapping_mul(31).wrapping_add(depth)
}

fn flood() -> Outcome {
    let chunk = vec![b'A'; 64 * 1024];
    let total: u64 = 10 << 30;
    let mut written: u64 = 0;
    let mut out = std::io::stdout().lock();
    while written < total {
        if let Err(e) = out.write_all(&chunk) {
            return blocked(format!("stdout write failed after {written} bytes: {e}"));
        }
        written += chunk.len() as u64;
    }
    escaped(format!("wrote {written} bytes to stdout"))
}

fn log_flood() -> Outcome {
    let mut n: u64 = 0;
    loop {
        weft_sdk::log::info!("log flood line {n}");
        n += 1;
    }
}

/// Passes one oversized string to a host call (`bytes`, default 32 MiB): the host must
/// refuse to copy it (hostcall fuel) rather than allocate whatever the guest sends.
fn huge_hostcall(ctx: &Context) -> Outcome {
    let bytes = match ctx.parse_or("bytes", 32usize << 20) {
        Ok(bytes) => bytes,
        Err(e) => return e.into(),
    };
    let line = "h".repeat(bytes);
    weft_sdk::log::info(&line);
    Outcome::failure("ESCAPED: the host accepted an oversized host call", 66)
}

fn huge_result(ctx: &Context) -> Outcome {
    let bytes: usize = match ctx.parse_or("bytes", 64 << 20) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    Outcome::success().result("huge", "x".repeat(bytes))
}

fn read_file(path: PathBuf) -> Outcome {
    match std::fs::read(&path) {
        Ok(data) => escaped(format!("read {} ({} bytes)", path.display(), data.len())),
        Err(e) => blocked(e),
    }
}

fn escape_symlink(ctx: &Context) -> Outcome {
    let ws = workspace(ctx);
    let link = ws.join("hostile-link");
    let _ = std::fs::remove_file(&link);
    let mut errors = Vec::new();
    for target in ["/etc", "../../../../../../../../etc"] {
        match symlink(target, &link) {
            Ok(()) => match std::fs::read(link.join("passwd")) {
                Ok(data) => {
                    return escaped(format!(
                        "read {}/passwd through a symlink to {target} ({} bytes)",
                        link.display(),
                        data.len()
                    ));
                }
                Err(e) => {
                    errors.push(format!("reading through symlink to {target}: {e}"));
                    let _ = std::fs::remove_file(&link);
                }
            },
            Err(e) => errors.push(format!("symlink to {target}: {e}")),
        }
    }
    blocked(errors.join("; "))
}

/// Every shape of link out of the workspace `ws`: each must fail.
fn symlink_out(ws: &std::path::Path) -> Outcome {
    // Links that stay inside, used below as stepping stones.
    let setup = || -> std::io::Result<()> {
        std::fs::create_dir_all(ws.join("sub"))?;
        std::fs::create_dir_all(ws.join("a"))?;
        std::fs::create_dir_all(ws.join("deep/er"))?;
        symlink("..", &ws.join("sub/up"))?;
        symlink("../inside.txt", &ws.join("sub/rel"))?;
        symlink("../../x", &ws.join("deep/er/l"))
    };
    if let Err(e) = setup() {
        return Outcome::failure(format!("setup: {e}"), 4);
    }
    let attempts: [(&str, std::io::Result<()>); 9] = [
        ("climb", symlink("../../etc/passwd", &ws.join("out-climb"))),
        ("absolute", symlink("/etc/passwd", &ws.join("out-absolute"))),
        ("tangled", symlink("a/../../x", &ws.join("out-tangled"))),
        ("subdir", symlink("../../x", &ws.join("sub/out-subdir"))),
        // `sub/up` is the workspace itself: one `..` from there is out.
        (
            "through-link",
            symlink("../x", &ws.join("sub/up/out-chain")),
        ),
        (
            "after-link",
            symlink("sub/up/../x", &ws.join("out-after-link")),
        ),
        (
            "rename-link",
            std::fs::rename(ws.join("sub/rel"), ws.join("out-renamed")),
        ),
        (
            "hard-link",
            std::fs::hard_link(ws.join("sub/rel"), ws.join("out-hard")),
        ),
        // `er/l` climbs two: fine two levels down, out one level down.
        (
            "rename-dir",
            std::fs::rename(ws.join("deep/er"), ws.join("er")),
        ),
    ];
    let mut escaped_by = Vec::new();
    let mut errors = Vec::new();
    for (shape, result) in attempts {
        match result {
            Ok(()) => escaped_by.push(shape),
            Err(e) => errors.push(format!("{shape}: {e}")),
        }
    }
    if escaped_by.is_empty() {
        blocked(errors.join("; "))
    } else {
        escaped(format!("made links out with {}", escaped_by.join(", ")))
    }
}

/// Links that stay inside the workspace `ws`: made, followed, moved, hard-linked.
fn symlink_inside(ws: &std::path::Path) -> Outcome {
    let read = |path: &str| std::fs::read_to_string(ws.join(path));
    let steps = || -> std::io::Result<()> {
        std::fs::write(ws.join("data.txt"), "inside data")?;
        std::fs::create_dir_all(ws.join("sub"))?;
        std::fs::create_dir_all(ws.join("p/q"))?;
        std::fs::create_dir_all(ws.join("a/b"))?;
        std::fs::create_dir_all(ws.join("moved"))?;
        symlink("data.txt", &ws.join("link-same"))?;
        symlink("../data.txt", &ws.join("sub/link-up"))?;
        symlink("sub/link-up", &ws.join("link-chain"))?;
        symlink("../../data.txt", &ws.join("p/q/two-up"))?;
        symlink("../../data.txt", &ws.join("a/b/deep"))?;
        for path in ["link-same", "sub/link-up", "link-chain", "p/q/two-up"] {
            if read(path)? != "inside data" {
                return Err(std::io::Error::other(format!("{path} reads wrong")));
            }
        }
        // Moved within its directory, hard-linked beside itself: same depth.
        std::fs::rename(ws.join("sub/link-up"), ws.join("sub/link-moved"))?;
        std::fs::hard_link(ws.join("sub/link-moved"), ws.join("sub/link-hard"))?;
        std::fs::hard_link(ws.join("data.txt"), ws.join("data-hard.txt"))?;
        // A directory moved down, and one moved up whose links still fit.
        std::fs::rename(ws.join("a"), ws.join("moved/a"))?;
        std::fs::create_dir_all(ws.join("p/q/r"))?;
        symlink("../x", &ws.join("p/q/r/fits"))?;
        std::fs::rename(ws.join("p/q/r"), ws.join("r"))
            .map_err(|e| std::io::Error::other(format!("moving r up: {e}")))?;
        for path in ["sub/link-moved", "sub/link-hard", "data-hard.txt"] {
            if read(path)? != "inside data" {
                return Err(std::io::Error::other(format!("{path} reads wrong")));
            }
        }
        Ok(())
    };
    match steps() {
        Ok(()) => Outcome::success(),
        Err(e) => Outcome::failure(format!("inside link refused: {e}"), 5),
    }
}

/// `symlink(2)` from wasi-libc (`std::os::wasi::fs::symlink_path` is unstable); it
/// resolves `link` against the preopens like `std::fs` does.
#[allow(unsafe_code)]
fn symlink(target: &str, link: &std::path::Path) -> std::io::Result<()> {
    use std::ffi::{CString, c_char, c_int};
    unsafe extern "C" {
        fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    }
    let invalid = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let target = CString::new(target).map_err(invalid)?;
    let link = CString::new(link.to_string_lossy().into_owned()).map_err(invalid)?;
    // SAFETY: both arguments are valid NUL-terminated strings that outlive the call.
    match unsafe { symlink(target.as_ptr(), link.as_ptr()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

fn write_readonly(ctx: &Context) -> Outcome {
    let path = workspace(ctx).join("hostile-write.txt");
    match std::fs::write(&path, b"hostile was here\n") {
        Ok(()) => escaped(format!("wrote {}", path.display())),
        Err(e) => blocked(e),
    }
}

fn secret(ctx: &Context) -> Outcome {
    let name = ctx.param_or("secret", "not-granted");
    match weft_sdk::secrets::get(name) {
        Ok(secret) => {
            let value = secret.reveal();
            escaped(format!("revealed secret `{name}` ({} bytes)", value.len()))
        }
        Err(e) => blocked(e),
    }
}

fn secret_print(ctx: &Context) -> Outcome {
    let name = ctx.param_or("secret", "not-granted");
    match weft_sdk::secrets::get(name) {
        Ok(secret) => {
            let value = secret.reveal();
            println!("the value of `{name}` is {value}");
            Outcome::success().result("length", value.len().to_string())
        }
        Err(e) => blocked(e),
    }
}

/// Hands a granted secret back as a result and in the ending's message (the host must
/// mask both before anything stores, prints or sends them).
fn secret_return(ctx: &Context) -> Outcome {
    let name = ctx.param_or("secret", "not-granted");
    let value = match weft_sdk::secrets::get(name) {
        Ok(secret) => secret.reveal(),
        Err(e) => return blocked(e),
    };
    let message = format!("the value is {value}");
    let outcome = match ctx.param_or("via", "success") {
        "warning" => Outcome::warning(message),
        "halt" => Outcome::halt(message),
        "skip" => Outcome::skip(message),
        "failure" => Outcome::failure(message, 9),
        _ => Outcome::success(),
    };
    outcome.result("leaked", value)
}

/// Logs `value: <start>` and `<rest> :end` as two log calls, for every cut of the value.
fn secret_split(ctx: &Context) -> Outcome {
    let name = ctx.param_or("secret", "not-granted");
    let value = match weft_sdk::secrets::get(name) {
        Ok(secret) => secret.reveal(),
        Err(e) => return blocked(e),
    };
    let mut lines = 0;
    for (cut, _) in value.char_indices().skip(1) {
        let (start, rest) = value.split_at(cut);
        weft_sdk::log::info(&format!("value: {start}"));
        weft_sdk::log::info(&format!("{rest} :end"));
        lines += 2;
    }
    Outcome::success().result("lines", lines.to_string())
}

/// Logs and prints the value as hex (both cases) and as JSON encoders escape it.
fn secret_encoded(ctx: &Context) -> Outcome {
    let name = ctx.param_or("secret", "not-granted");
    let value = match weft_sdk::secrets::get(name) {
        Ok(secret) => secret.reveal(),
        Err(e) => return blocked(e),
    };
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    let forms = [
        format!("hex {hex} ."),
        format!("HEX {} .", hex.to_uppercase()),
        format!("hexdump 00ff{hex}ff00"),
        format!(r#"{{"php":"{}"}}"#, json(&value, true, false)),
        format!(
            r#"{{"php_unescaped_unicode":"{}"}}"#,
            json(&value, true, true)
        ),
        format!(r#"{{"python":"{}"}}"#, json(&value, false, false)),
    ];
    for form in &forms {
        weft_sdk::log::info(form);
        println!("{form}");
    }
    Outcome::success().result("lines", (2 * forms.len()).to_string())
}

/// `value` JSON-escaped by hand: `/` as `\/` when `slash`, non-ASCII kept when
/// `unicode`, else `\uXXXX` (lower case, as PHP and Python write it).
fn json(value: &str, slash: bool, unicode: bool) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if slash => out.push_str("\\/"),
            c if !c.is_ascii() && !unicode => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn http(ctx: &Context) -> Outcome {
    let url = ctx.param_or("url", "http://example.com/");
    match weft_sdk::http::get(url) {
        Ok((status, body)) => escaped(format!("HTTP {status} from {url} ({} bytes)", body.len())),
        Err(e) => blocked(e),
    }
}

fn canary_write(canary: String) -> Outcome {
    let pattern = canary.as_bytes();
    let heap: Vec<u8> = pattern
        .iter()
        .copied()
        .cycle()
        .take(CANARY_HEAP_BYTES)
        .collect();
    black_box(&heap);
    for (slot, byte) in STATIC_BUF.iter().zip(pattern.iter().copied().cycle()) {
        slot.store(byte, Ordering::Relaxed);
    }
    // Leave the heap buffer behind in linear memory on purpose.
    std::mem::forget(heap);
    Outcome::success()
}

fn canary_read(canary: String) -> Outcome {
    let needle = canary.into_bytes();
    let heap = uninit_heap(CANARY_HEAP_BYTES);
    if let Some(at) = find(&heap, &needle) {
        return escaped(format!(
            "canary found in a fresh heap buffer at offset {at}"
        ));
    }
    let statics: Vec<u8> = STATIC_BUF
        .iter()
        .map(|b| b.load(Ordering::Relaxed))
        .collect();
    if let Some(at) = find(&statics, &needle) {
        return escaped(format!("canary found in the static buffer at offset {at}"));
    }
    Outcome::success()
}

/// Copies out what a fresh, never-initialised heap allocation of `len` bytes contains.
#[allow(unsafe_code)]
fn uninit_heap(len: usize) -> Vec<u8> {
    let fresh: Vec<u8> = Vec::with_capacity(len);
    let base = fresh.as_ptr();
    let mut copy = vec![0u8; len];
    for (i, slot) in copy.iter_mut().enumerate() {
        // SAFETY: `base..base + len` is allocated (capacity `len`); the bytes are
        // uninitialised on purpose — reading whatever the memory holds is the point. A
        // volatile read keeps the compiler from assuming anything about them.
        *slot = unsafe { std::ptr::read_volatile(base.add(i)) };
    }
    drop(fresh);
    copy
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

weft_sdk::export_task!(Hostile);
