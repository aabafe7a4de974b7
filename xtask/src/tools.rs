//! What the steps need from the machine, checked before it is used and installed when missing:
//! rustup components and targets, Debian packages (each named explicitly: Recommends are never
//! installed, so a package that is only a Recommends of another must be listed itself), and the
//! Kotlin compiler from npm into `target/tools/`.

use std::path::{Path, PathBuf};

use crate::run::{output, run, run_with, succeeds};
use crate::{cargo, path_str, target_dir, Result};

/// rustfmt and clippy come with rustup's default profile, but not with every install.
pub fn ensure_components() -> Result {
    let cargo = cargo();
    for (component, probe) in [("rustfmt", "fmt"), ("clippy", "clippy")] {
        if !succeeds(&cargo, &[probe, "--version"]) {
            require("rustup", "install Rust with rustup (https://rustup.rs)")?;
            run("rustup", &["component", "add", component])?;
        }
    }
    Ok(())
}

pub fn ensure_target(target: &str) -> Result {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == target) {
        require("rustup", "install Rust with rustup (https://rustup.rs)")?;
        run("rustup", &["target", "add", target])?;
    }
    Ok(())
}

/// cargo-nextest runs each test in a process of its own (so failpoint hooks and environment
/// changes never cross tests) and can stop a hung test. Installed from crates.io when missing.
pub fn ensure_nextest() -> Result {
    if !succeeds(&cargo(), &["nextest", "--version"]) {
        run(&cargo(), &["install", "cargo-nextest", "--locked"])?;
    }
    Ok(())
}

/// Fails with what to install when `program` is not on PATH.
fn require(program: &str, hint: &str) -> Result {
    if succeeds("sh", &["-c", &format!("command -v {program}")]) {
        Ok(())
    } else {
        Err(format!("`{program}` is not installed: {hint}"))
    }
}

fn is_root() -> bool {
    output("id", &["-u"]).is_some_and(|o| o.trim() == "0")
}

/// Whether dpkg has `package` fully installed (not merely known, or removed with config left).
fn dpkg_installed(package: &str) -> bool {
    output("dpkg-query", &["-W", "-f=${Status}", package])
        .is_some_and(|s| s.trim() == "install ok installed")
}

/// Installs whichever of `packages` are not installed yet, each by name, without Recommends;
/// runs `apt-get update` first (once per xtask run).
pub fn ensure_packages(packages: &[&str]) -> Result {
    use std::sync::atomic::{AtomicBool, Ordering};
    static UPDATED: AtomicBool = AtomicBool::new(false);
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !succeeds("apt-get", &["--version"]) {
        return Err(format!(
            "these packages are missing and there is no apt-get here: {} (install them by hand)",
            missing.join(", ")
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
    args.extend(&missing);
    run_with(program, &args, &env)
}

pub const ANDROID_TARGET: &str = "aarch64-linux-android";

/// Debian's stand-in for the NDK's C compiler. libc6-dev-arm64-cross is only a Recommends of the
/// compiler, and without it `<stdint.h>` fails in ring's build script.
const ANDROID_STAND_IN_PACKAGES: &[&str] = &[
    "gcc-aarch64-linux-gnu",
    "binutils-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
];

/// What the Kotlin tests need from Debian. libjna-jni (the native part) is a Depends of
/// libjna-java; named anyway, to be explicit. junit5 brings JUnit Jupiter and the console
/// launcher (its jars and their Depends: opentest4j, apiguardian, picocli).
const KOTLIN_PACKAGES: &[&str] = &["libjna-java", "libjna-jni", "junit5"];

fn has_ndk_compiler() -> bool {
    std::env::var_os("CC_aarch64_linux_android").is_some()
        || succeeds("aarch64-linux-android-clang", &["--version"])
}

/// Every Debian package the test run needs, installed in one apt call up front.
pub fn ensure_test_packages() -> Result {
    let mut packages: Vec<&str> = KOTLIN_PACKAGES.to_vec();
    if !has_ndk_compiler() {
        packages.extend(ANDROID_STAND_IN_PACKAGES);
    }
    if !succeeds("javac", &["-version"]) || !succeeds("java", &["-version"]) {
        packages.push("default-jdk-headless");
    }
    if !succeeds("npm", &["--version"]) {
        packages.push("npm");
    }
    ensure_packages(&packages)
}

/// The C compiler environment for checking the Android arm64 build. Checking runs the C parts'
/// build scripts (SQLite, ring), which need a C compiler and libc headers for the target;
/// without the NDK, Debian's aarch64 GCC and its cross libc headers stand in (nothing is
/// linked, so only the Rust side's verdict matters). An NDK's clang on PATH, or an explicit
/// `CC_aarch64_linux_android`, is used instead when present.
pub fn android_c_env() -> Result<Vec<(&'static str, String)>> {
    ensure_target(ANDROID_TARGET)?;
    if has_ndk_compiler() {
        return Ok(Vec::new());
    }
    ensure_packages(ANDROID_STAND_IN_PACKAGES)?;
    let header = Path::new("/usr/aarch64-linux-gnu/include/bits/libc-header-start.h");
    if !header.exists() {
        return Err(format!(
            "{} is missing although libc6-dev-arm64-cross is installed: reinstall it",
            header.display()
        ));
    }
    Ok(vec![
        ("CC_aarch64_linux_android", "aarch64-linux-gnu-gcc".into()),
        ("AR_aarch64_linux_android", "aarch64-linux-gnu-ar".into()),
    ])
}

/// What running Kotlin needs: a JDK, kotlinc (with its coroutines and kotlin-test jars), JNA,
/// and JUnit 5 (the API to compile the tests against, the console launcher to run them).
pub struct KotlinTools {
    pub kotlinc: PathBuf,
    pub lib: PathBuf,
    pub jna: PathBuf,
    /// `@Test` and friends, with the annotation jars their signatures name.
    pub junit_api: Vec<PathBuf>,
    /// `org.junit.platform.console.ConsoleLauncher` with the Jupiter engine.
    pub junit_console: PathBuf,
}

pub const KOTLIN_VERSION: &str = "2.4.20";
const JNA_JAR: &str = "/usr/share/java/jna.jar";
/// Where Debian's junit5 (and its Depends) put the jars.
const JUNIT_API_JARS: &[&str] = &[
    "/usr/share/java/junit-jupiter-api.jar",
    "/usr/share/java/opentest4j.jar",
    "/usr/share/java/apiguardian-api.jar",
];
const JUNIT_CONSOLE_JAR: &str = "/usr/share/java/junit-platform-console-standalone.jar";

pub fn kotlin_tools() -> Result<KotlinTools> {
    if !succeeds("javac", &["-version"]) || !succeeds("java", &["-version"]) {
        ensure_packages(&["default-jdk-headless"])?;
    }
    ensure_packages(KOTLIN_PACKAGES)?;
    if !Path::new(JNA_JAR).exists() {
        return Err(format!(
            "{JNA_JAR} is missing although libjna-java is installed"
        ));
    }
    for jar in JUNIT_API_JARS.iter().chain([&JUNIT_CONSOLE_JAR]) {
        if !Path::new(jar).exists() {
            return Err(format!(
                "{jar} is missing although junit5 is installed: reinstall junit5"
            ));
        }
    }
    let (prefix, home, kotlinc) = install_kotlinc()?;
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
        junit_api: JUNIT_API_JARS.iter().map(PathBuf::from).collect(),
        junit_console: PathBuf::from(JUNIT_CONSOLE_JAR),
    })
}

/// kotlinc from the npm registry into `target/tools/kotlin` (when it is not there at the pinned
/// version); returns (install prefix, compiler home, kotlinc).
pub fn install_kotlinc() -> Result<(PathBuf, PathBuf, PathBuf)> {
    let prefix = target_dir().join("tools").join("kotlin");
    let home = prefix.join("node_modules").join("kotlin-compiler");
    let kotlinc = home.join("bin").join("kotlinc");
    let installed = std::fs::read_to_string(home.join("build.txt"))
        .map(|v| v.trim() == KOTLIN_VERSION)
        .unwrap_or(false);
    if !installed || !kotlinc.exists() {
        if !succeeds("npm", &["--version"]) {
            ensure_packages(&["npm"])?;
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
    Ok((prefix, home, kotlinc))
}
