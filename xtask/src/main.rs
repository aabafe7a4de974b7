//! Developer commands, so the README has one way to do each thing.
//!
//! - `cargo xtask test`: format check, clippy with warnings denied, every Rust test, the
//!   Kotlin/Swift binding generation, the Kotlin tests on the JVM against the simulator, and a
//!   `cargo check` of the FFI crate for Android (aarch64). This is what CI runs.
//! - `cargo xtask bindings`: generate the Kotlin and Swift bindings into `target/bindings/`.
//! - `cargo xtask kotlin-test`: only the bindings and the Kotlin tests.
//! - `cargo xtask android-check`: only `cargo check --target aarch64-linux-android -p upn-ffi`.
//!
//! Each step installs what it needs when it is missing (rustup components and targets, the
//! Kotlin compiler from npm into `target/tools/`, JNA and a JDK from Debian packages, a stand-in
//! C cross compiler for the Android check), so a fresh machine needs nothing by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bindings") => bindings().map(|_| ()),
        Some("kotlin-test") => bindings().and_then(|b| kotlin_tests(&b)),
        Some("android-check") => android_check(),
        _ => {
            eprintln!("usage: cargo xtask <test|bindings|kotlin-test|android-check>");
            eprintln!("  test           fmt check, clippy -D warnings, every test (Rust and Kotlin), Android check");
            eprintln!("  bindings       generate Kotlin and Swift bindings into target/bindings/");
            eprintln!("  kotlin-test    generate the bindings and run the Kotlin tests on the JVM");
            eprintln!("  android-check  cargo check -p upn-ffi for aarch64-linux-android");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Runs a command in the workspace root, echoing it, failing on a non-zero exit.
fn run(program: &str, args: &[&str]) -> Result {
    run_with(program, args, &[])
}

fn run_with(program: &str, args: &[&str], env: &[(&str, String)]) -> Result {
    eprintln!("$ {program} {}", args.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root())
        .status()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    eprintln!("  ({:.1?})", started.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// rustfmt and clippy come with rustup's default profile, but not with every install.
fn ensure_components() -> Result {
    let cargo = cargo();
    for (component, probe) in [("rustfmt", "fmt"), ("clippy", "clippy")] {
        if !succeeds(&cargo, &[probe, "--version"]) {
            run("rustup", &["component", "add", component])?;
        }
    }
    Ok(())
}

fn test() -> Result {
    let started = Instant::now();
    let cargo = cargo();
    ensure_components()?;
    run(&cargo, &["fmt", "--all", "--", "--check"])?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run(&cargo, &["test", "--workspace"])?;
    // Generating the bindings proves the UniFFI surface still generates for both platforms
    // (there is no Swift toolchain here: generation is the Swift check).
    let bindings = bindings()?;
    kotlin_tests(&bindings)?;
    android_check()?;
    eprintln!("xtask test: all steps passed ({:.0?})", started.elapsed());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bindings

/// The top-level `uniffi.toml` as UniFFI 0.32's global config: its `--config` file wants
/// `[defaults]` / `[crates.NAME]` tables, while `uniffi.toml` keeps the classic per-crate shape
/// (`[bindings.kotlin]`, ...). A file already in the global shape is used as it is.
fn uniffi_config(out: &Path) -> Result<PathBuf> {
    let source = root().join("uniffi.toml");
    let text = std::fs::read_to_string(&source)
        .map_err(|e| format!("could not read {}: {e}", source.display()))?;
    let global = text.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("[defaults") || l.starts_with("[crates") || l.starts_with("[crate-roots")
    });
    if global {
        return Ok(source);
    }
    let mut rewritten =
        String::from("# Generated by `cargo xtask bindings` from uniffi.toml.\n[defaults]\n");
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("[[") {
            rewritten.push_str(&format!("[[defaults.{rest}\n"));
        } else if let Some(rest) = trimmed.strip_prefix('[') {
            rewritten.push_str(&format!("[defaults.{rest}\n"));
        } else {
            rewritten.push_str(line);
            rewritten.push('\n');
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("could not create {}: {e}", out.display()))?;
    let path = out.join("uniffi-global.toml");
    std::fs::write(&path, rewritten)
        .map_err(|e| format!("could not write {}: {e}", path.display()))?;
    Ok(path)
}

/// Generates Kotlin and Swift bindings from the built library; returns the output folder.
fn bindings() -> Result<PathBuf> {
    let cargo = cargo();
    run(&cargo, &["build", "-p", "upn-ffi"])?;
    let lib = target_dir().join("debug").join(format!(
        "{}upn_ffi.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    let lib = path_str(&lib);
    let out = target_dir().join("bindings");
    let config = path_str(&uniffi_config(&out)?);
    for language in ["kotlin", "swift"] {
        let dir = out.join(language);
        // Start clean, so a renamed package or module leaves no stale file behind.
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| format!("could not clear {}: {e}", dir.display()))?;
        }
        let dir = path_str(&dir);
        run(
            &cargo,
            &[
                "run",
                "--quiet",
                "-p",
                "upn-ffi",
                "--bin",
                "uniffi-bindgen",
                "--",
                "generate",
                &lib,
                "--language",
                language,
                "--out-dir",
                &dir,
                "--config",
                &config,
                "--no-format",
            ],
        )?;
    }
    // The names uniffi.toml asks for must be what came out.
    let kotlin = out.join("kotlin/com/upn/driver/core/upn_ffi.kt");
    let swift = out.join("swift/UpnDriverCore.swift");
    for expected in [&kotlin, &swift] {
        if !expected.exists() {
            return Err(format!(
                "binding generation did not produce {} (is uniffi.toml applied?)",
                expected.display()
            ));
        }
    }
    eprintln!("bindings written to {}", out.display());
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Installing tools

fn is_root() -> bool {
    output("id", &["-u"]).is_some_and(|o| o.trim() == "0")
}

/// Installs Debian packages, running `apt-get update` first (once per xtask run).
fn apt_install(packages: &[&str]) -> Result {
    use std::sync::atomic::{AtomicBool, Ordering};
    static UPDATED: AtomicBool = AtomicBool::new(false);
    if !succeeds("apt-get", &["--version"]) {
        return Err(format!(
            "{} missing and there is no apt-get here: install it by hand",
            packages.join(", ")
        ));
    }
    let (program, prefix): (&str, Vec<&str>) = if is_root() {
        ("apt-get", vec![])
    } else {
        ("sudo", vec!["-n", "apt-get"])
    };
    let env = [("DEBIAN_FRONTEND", "noninteractive".to_string())];
    if !UPDATED.swap(true, Ordering::SeqCst) {
        let mut args = prefix.clone();
        args.extend(["update", "-qq"]);
        run_with(program, &args, &env)?;
    }
    let mut args = prefix;
    args.extend(["install", "-y", "-qq", "--no-install-recommends"]);
    args.extend(packages);
    run_with(program, &args, &env)
}

/// What running Kotlin needs: a JDK, kotlinc (with its coroutines and kotlin-test jars), JNA.
struct KotlinTools {
    kotlinc: PathBuf,
    lib: PathBuf,
    jna: PathBuf,
}

const KOTLIN_VERSION: &str = "2.4.20";
const JNA_JAR: &str = "/usr/share/java/jna.jar";

fn kotlin_tools() -> Result<KotlinTools> {
    if !succeeds("javac", &["-version"]) || !succeeds("java", &["-version"]) {
        apt_install(&["default-jdk-headless"])?;
    }
    if !Path::new(JNA_JAR).exists() {
        apt_install(&["libjna-java"])?;
    }
    let prefix = target_dir().join("tools").join("kotlin");
    let home = prefix.join("node_modules").join("kotlin-compiler");
    let kotlinc = home.join("bin").join("kotlinc");
    let installed = std::fs::read_to_string(home.join("build.txt"))
        .map(|v| v.trim() == KOTLIN_VERSION)
        .unwrap_or(false);
    if !installed || !kotlinc.exists() {
        if !succeeds("npm", &["--version"]) {
            apt_install(&["npm"])?;
        }
        let spec = format!("kotlin-compiler@{KOTLIN_VERSION}");
        run(
            "npm",
            &[
                "install",
                "--prefix",
                &path_str(&prefix),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                &spec,
            ],
        )?;
    }
    let lib = home.join("lib");
    for jar in [
        "kotlin-stdlib.jar",
        "kotlinx-coroutines-core-jvm.jar",
        "kotlin-test.jar",
    ] {
        if !lib.join(jar).exists() {
            return Err(format!(
                "{} lacks {jar}; remove {} and run again",
                lib.display(),
                prefix.display()
            ));
        }
    }
    Ok(KotlinTools {
        kotlinc,
        lib,
        jna: PathBuf::from(JNA_JAR),
    })
}

// ---------------------------------------------------------------------------------------------
// Kotlin tests

/// The `.kt` files in `dir` (and below it when `recursive`), sorted.
fn kotlin_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("could not list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("could not list {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            if recursive {
                files.extend(kotlin_files(&path, true)?);
            }
        } else if path.extension().is_some_and(|e| e == "kt") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// FNV-1a, 64 bits: a stable content hash for the jar cache (not a security boundary).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}

/// The Kotlin sources compiled for the tests: the generated bindings, the JVM-only part of the
/// Android facade (the files directly in `android/src/main/kotlin/com/upn/driver/`; the
/// Android-only classes live below it), and the tests in `bindings/tests/kotlin/`.
fn kotlin_sources(bindings: &Path) -> Result<Vec<PathBuf>> {
    let mut sources = kotlin_files(&bindings.join("kotlin"), true)?;
    sources.extend(kotlin_files(
        &root().join("android/src/main/kotlin/com/upn/driver"),
        false,
    )?);
    sources.extend(kotlin_files(&root().join("bindings/tests/kotlin"), true)?);
    Ok(sources)
}

/// Compiles the sources into a jar under `target/kotlin-cache/`, keyed by a hash of every
/// source and of the compiler version; an unchanged tree reuses the jar (kotlinc takes ~20 s).
fn compiled_jar(tools: &KotlinTools, sources: &[PathBuf], classpath: &str) -> Result<PathBuf> {
    let mut hash = Fnv::new();
    hash.write(KOTLIN_VERSION.as_bytes());
    hash.write(classpath.as_bytes());
    let base = root();
    for source in sources {
        let rel = source.strip_prefix(&base).unwrap_or(source);
        hash.write(path_str(rel).as_bytes());
        let text = std::fs::read(source)
            .map_err(|e| format!("could not read {}: {e}", source.display()))?;
        hash.write(&text);
    }
    let cache = target_dir().join("kotlin-cache");
    let jar = cache.join(format!("upn-kotlin-tests-{:016x}.jar", hash.0));
    if jar.exists() {
        eprintln!(
            "kotlin: sources unchanged, reusing {} (cache hit)",
            jar.display()
        );
        return Ok(jar);
    }
    std::fs::create_dir_all(&cache)
        .map_err(|e| format!("could not create {}: {e}", cache.display()))?;
    // Older jars are for sources that no longer exist.
    if let Ok(entries) = std::fs::read_dir(&cache) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let partial = cache.join("partial.jar");
    let mut args: Vec<String> = vec![
        "-classpath".into(),
        classpath.into(),
        "-jvm-target".into(),
        "17".into(),
        "-nowarn".into(),
        "-d".into(),
        path_str(&partial),
    ];
    args.extend(sources.iter().map(|s| path_str(s)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    eprintln!("kotlin: compiling {} sources (cache miss)", sources.len());
    run(&path_str(&tools.kotlinc), &args)?;
    std::fs::rename(&partial, &jar)
        .map_err(|e| format!("could not move the jar into place: {e}"))?;
    Ok(jar)
}

/// Builds the library and the CLI (the test starts `upn-driver sim`), compiles (or reuses) the
/// Kotlin tests and runs them on the JVM. They print `N passed, N failed`.
fn kotlin_tests(bindings: &Path) -> Result {
    let started = Instant::now();
    run(&cargo(), &["build", "-p", "upn-ffi", "-p", "upn-driver"])?;
    let tools = kotlin_tools()?;
    let jars = [
        tools.lib.join("kotlinx-coroutines-core-jvm.jar"),
        tools.lib.join("kotlin-test.jar"),
        tools.jna.clone(),
    ];
    let classpath = std::env::join_paths(&jars)
        .map_err(|e| format!("bad classpath: {e}"))?
        .to_string_lossy()
        .into_owned();
    let sources = kotlin_sources(bindings)?;
    let compile_started = Instant::now();
    let jar = compiled_jar(&tools, &sources, &classpath)?;
    let compile_time = compile_started.elapsed();

    let run_classpath = std::env::join_paths(
        [jar.clone(), tools.lib.join("kotlin-stdlib.jar")]
            .iter()
            .chain(jars.iter()),
    )
    .map_err(|e| format!("bad classpath: {e}"))?
    .to_string_lossy()
    .into_owned();
    let debug = target_dir().join("debug");
    let data = target_dir().join("tmp").join("kotlin-tests");
    std::fs::create_dir_all(&data)
        .map_err(|e| format!("could not create {}: {e}", data.display()))?;
    let mut env = BTreeMap::new();
    env.insert(
        "UPN_DRIVER_BIN",
        path_str(&debug.join(format!("upn-driver{}", std::env::consts::EXE_SUFFIX))),
    );
    env.insert("UPN_TEST_TMP", path_str(&data));
    // One test makes a listener throw on purpose: the panic it becomes is caught in the FFI, and
    // a backtrace of it would only bury the results.
    env.insert("RUST_BACKTRACE", "0".into());
    let args = [
        "-Djava.awt.headless=true".to_string(),
        format!("-Djna.library.path={}", path_str(&debug)),
        "-cp".to_string(),
        run_classpath,
        "com.upn.driver.tests.MainKt".to_string(),
    ];
    eprintln!("$ java {}", args.join(" "));
    let run_started = Instant::now();
    let mut child = Command::new("java")
        .args(&args)
        .envs(&env)
        .current_dir(root())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not run java: {e}"))?;
    // A hung test must not hang CI: the whole run gets five minutes.
    let limit = Duration::from_secs(300);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if run_started.elapsed() > limit => {
                // SIGTERM first, so the JVM's shutdown hook stops the simulator it started.
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                std::thread::sleep(Duration::from_secs(5));
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the Kotlin tests took longer than {limit:?} and were stopped"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for the Kotlin tests: {e}")),
        }
    };
    eprintln!(
        "kotlin: compile {:.1?}, run {:.1?}, step {:.1?}",
        compile_time,
        run_started.elapsed(),
        started.elapsed()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("the Kotlin tests failed ({status})"))
    }
}

// ---------------------------------------------------------------------------------------------
// Android

const ANDROID_TARGET: &str = "aarch64-linux-android";

/// `cargo check -p upn-ffi` for Android arm64: the FFI crate and everything below it compile
/// for the platform. Checking runs the C parts' build scripts (SQLite, ring), which need a C
/// compiler for the target; without the NDK, Debian's aarch64 GCC stands in (nothing is
/// linked, so only the Rust side's verdict matters). An NDK's clang on PATH, or an explicit
/// `CC_aarch64_linux_android`, is used instead when present.
fn android_check() -> Result {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == ANDROID_TARGET) {
        run("rustup", &["target", "add", ANDROID_TARGET])?;
    }
    let mut env: Vec<(&str, String)> = Vec::new();
    let configured = std::env::var_os("CC_aarch64_linux_android").is_some()
        || succeeds("aarch64-linux-android-clang", &["--version"]);
    if !configured {
        if !succeeds("aarch64-linux-gnu-gcc", &["--version"]) {
            apt_install(&["gcc-aarch64-linux-gnu"])?;
        }
        env.push(("CC_aarch64_linux_android", "aarch64-linux-gnu-gcc".into()));
        env.push(("AR_aarch64_linux_android", "aarch64-linux-gnu-ar".into()));
    }
    run_with(
        &cargo(),
        &["check", "--target", ANDROID_TARGET, "-p", "upn-ffi"],
        &env,
    )
}
