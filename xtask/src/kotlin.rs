//! The Kotlin tests: the generated bindings, the Android library's Kotlin (the JVM facade, the
//! Android-only glue against compile-only stubs, the test fixtures) and the JUnit 5 tests in
//! `bindings/tests/kotlin/`, compiled by kotlinc (cached by a hash of every source) and run on
//! the JVM by JUnit's console launcher, against `upn-driver sim` as a child process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::run::{run, Counts};
use crate::tools::{kotlin_tools, KotlinTools, KOTLIN_VERSION};
use crate::{debug_dir, path_str, root, target_dir, Result};

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

/// The Kotlin sources compiled for the tests: the generated bindings, every Kotlin source of the
/// Android library (`android/src/main/kotlin/`: the JVM facade and the Android-only glue, which
/// compiles against the signature-only stubs in `android/stubs/` so a typo there fails here; it
/// is compiled, never run), its test fixtures (`FakeDriverCore`), and the tests in
/// `bindings/tests/kotlin/`.
fn kotlin_sources(bindings: &Path) -> Result<Vec<PathBuf>> {
    let mut sources = kotlin_files(&bindings.join("kotlin"), true)?;
    for dir in [
        "android/src/main/kotlin",
        "android/src/testFixtures/kotlin",
        "android/stubs",
        "bindings/tests/kotlin",
    ] {
        sources.extend(kotlin_files(&root().join(dir), true)?);
    }
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

/// The count `[  N <label>  ]` in the summary box JUnit's console launcher prints last.
fn junit_count(lines: &[String], label: &str) -> Option<u64> {
    lines.iter().rev().find_map(|line| {
        let inner = line.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
        inner.strip_suffix(label)?.trim().parse().ok()
    })
}

/// The launcher's summary as counts: aborted tests (a failed assumption) count as failed.
fn junit_counts(lines: &[String]) -> Option<Counts> {
    let passed = junit_count(lines, "tests successful")?;
    let failed = junit_count(lines, "tests failed")?;
    let aborted = junit_count(lines, "tests aborted").unwrap_or(0);
    Some(Counts {
        passed,
        failed: failed + aborted,
    })
}

/// Compiles (or reuses) the Kotlin tests and runs them on the JVM against the library and the
/// CLI the test build made, with JUnit's console launcher; its summary gives the counts.
pub fn run_tests(bindings: &Path) -> Result<Counts> {
    let started = Instant::now();
    let tools = kotlin_tools()?;
    let mut jars = vec![
        tools.lib.join("kotlinx-coroutines-core-jvm.jar"),
        tools.lib.join("kotlin-test.jar"),
        tools.jna.clone(),
    ];
    jars.extend(tools.junit_api.iter().cloned());
    let classpath = std::env::join_paths(&jars)
        .map_err(|e| format!("bad classpath: {e}"))?
        .to_string_lossy()
        .into_owned();
    let sources = kotlin_sources(bindings)?;
    let compile_started = Instant::now();
    let jar = compiled_jar(&tools, &sources, &classpath)?;
    let compile_time = compile_started.elapsed();

    let run_classpath = std::env::join_paths(
        [
            jar.clone(),
            tools.lib.join("kotlin-stdlib.jar"),
            tools.junit_console.clone(),
        ]
        .iter()
        .chain(jars.iter()),
    )
    .map_err(|e| format!("bad classpath: {e}"))?
    .to_string_lossy()
    .into_owned();
    let debug = debug_dir();
    let cli = debug.join(format!("upn-driver{}", std::env::consts::EXE_SUFFIX));
    if !cli.exists() {
        return Err(format!(
            "{} is missing: the test build makes it (cargo xtask test)",
            cli.display()
        ));
    }
    let data = target_dir().join("tmp").join("kotlin-tests");
    std::fs::create_dir_all(&data)
        .map_err(|e| format!("could not create {}: {e}", data.display()))?;
    let mut env = BTreeMap::new();
    env.insert("UPN_DRIVER_BIN", path_str(&cli));
    env.insert("UPN_TEST_TMP", path_str(&data));
    // One test makes a listener throw on purpose: the panic it becomes is caught in the FFI, and
    // a backtrace of it would only bury the results.
    env.insert("RUST_BACKTRACE", "0".into());
    let args = [
        "-Djava.awt.headless=true".to_string(),
        format!("-Djna.library.path={}", path_str(&debug)),
        "-cp".to_string(),
        run_classpath,
        "org.junit.platform.console.ConsoleLauncher".to_string(),
        "--disable-banner".to_string(),
        "--disable-ansi-colors".to_string(),
        "--details=tree".to_string(),
        "--fail-if-no-tests".to_string(),
        // The test jar itself: a package selector finds nothing in a jar without directory
        // entries (kotlinc writes none); the class-name filter (`*Tests`) leaves the stubs out.
        format!("--scan-classpath={}", path_str(&jar)),
    ];
    eprintln!("$ java {}", args.join(" "));
    let run_started = Instant::now();
    let mut child = crate::run::command("java")
        .args(&args)
        .envs(&env)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run java: {e}"))?;
    let stdout = child.stdout.take().map(|s| crate::run::tee(s, false));
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
    let lines = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    eprintln!(
        "kotlin: compile {:.1?}, run {:.1?}, step {:.1?}",
        compile_time,
        run_started.elapsed(),
        started.elapsed()
    );
    match junit_counts(&lines) {
        Some(counts) => Ok(counts),
        None if status.success() => Err(
            "JUnit's console launcher printed no `tests successful` / `tests failed` summary"
                .into(),
        ),
        None => Err(format!(
            "the Kotlin tests failed ({status}) before reporting"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn the_console_launchers_summary_is_counted() {
        let summary = lines(
            "Test run finished after 5123 ms\n\
             [         3 containers found      ]\n\
             [        19 tests found           ]\n\
             [         1 tests skipped         ]\n\
             [        17 tests successful      ]\n\
             [         1 tests failed          ]\n\
             [         1 tests aborted         ]\n",
        );
        assert_eq!(
            junit_counts(&summary),
            Some(Counts {
                passed: 17,
                failed: 2
            })
        );
    }

    #[test]
    fn no_summary_is_no_counts() {
        assert_eq!(junit_counts(&lines("kotlin tests: setup failed\n")), None);
        // Half a summary (no failed count) is no summary.
        assert_eq!(junit_counts(&lines("[ 3 tests successful ]\n")), None);
    }
}
