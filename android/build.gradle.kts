// Android library: the UniFFI-generated Kotlin bindings (`com.upn.driver.core`), the Kotlin
// facade (`com.upn.driver`), the Android glue (`com.upn.driver.android`), libupn_ffi.so built by
// cargo-ndk, and test fixtures (`FakeDriverCore`, `com.upn.driver.testing`) for app unit tests.
//
// Needs: the Android SDK with NDK r28+ (`ndkVersion` below; cargo-ndk is pointed at it),
// `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`, and
// `cargo install cargo-ndk`.
//
//   gradle publishToMavenLocal                 # com.upn.driver:upn-driver-core:<version> into ~/.m2
//   gradle assembleRelease -PupnAbis=arm64-v8a # one ABI, for a quicker development build

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.20"
    `maven-publish`
}

group = "com.upn.driver"
// The Rust workspace's version (Cargo.toml `[workspace.package]`); -PupnVersion overrides it.
version = providers.gradleProperty("upnVersion").getOrElse("0.1.0")

/** The Rust workspace this module lives in. */
val workspace: File = rootDir.parentFile
val jniLibsOut = layout.buildDirectory.dir("rustJniLibs")

/** The ABIs libupn_ffi.so is built for; `-PupnAbis=arm64-v8a` (comma-separated) for fewer. */
val supportedAbis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
val abis: List<String> =
    providers
        .gradleProperty("upnAbis")
        .map { value -> value.split(',').map(String::trim).filter(String::isNotEmpty) }
        .getOrElse(supportedAbis)
        .also { chosen ->
            val unknown = chosen - supportedAbis.toSet()
            require(chosen.isNotEmpty() && unknown.isEmpty()) {
                "-PupnAbis=${chosen.joinToString(",")}: choose from ${supportedAbis.joinToString(",")}"
            }
        }

/**
 * libupn_ffi.so for every ABI, release profile, via cargo-ndk with the NDK pinned below (r28+
 * links with 16 KB page alignment by default; `.cargo/config.toml` also passes
 * `-z max-page-size=16384` for the 64-bit Android targets, for any NDK). The workspace's release
 * profile strips symbols; this build keeps line tables instead (overridden through Cargo's
 * environment, not in Cargo.toml) so crashes can be symbolicated: the AAR carries the unstripped
 * libraries, the app's build strips them for the APK and, with `ndk.debugSymbolLevel = "FULL"`,
 * uploads the symbols to Play. `nativeDebugSymbols` zips them for other crash reporters.
 */
val cargoNdkBuild by tasks.registering(Exec::class) {
    group = "rust"
    description = "Builds libupn_ffi.so for ${abis.joinToString()} with cargo-ndk"
    workingDir = workspace
    val targets = abis.flatMap { listOf("-t", it) }
    commandLine(
        listOf("cargo", "ndk") + targets +
            listOf("--platform", "24", "-o", jniLibsOut.get().asFile.absolutePath, "build", "--release", "-p", "upn-ffi"),
    )
    environment("CARGO_PROFILE_RELEASE_DEBUG", "line-tables-only")
    environment("CARGO_PROFILE_RELEASE_STRIP", "none")
    doFirst {
        environment("ANDROID_NDK_HOME", androidComponents.sdkComponents.ndkDirectory.get().asFile.absolutePath)
    }
    inputs.property("abis", abis)
    inputs.files(fileTree(workspace) { include("core/src/**", "bindings/src/**", "Cargo.toml", "Cargo.lock", ".cargo/config.toml") })
    outputs.dir(jniLibsOut)
}

/** The unstripped libraries, zipped per ABI, for crash reporters other than Play. */
val nativeDebugSymbols by tasks.registering(Zip::class) {
    group = "rust"
    description = "Zips the unstripped libupn_ffi.so of each ABI (not shipped in any APK)"
    dependsOn(cargoNdkBuild)
    from(jniLibsOut)
    archiveFileName.set("upn-driver-core-$version-native-debug-symbols.zip")
    destinationDirectory.set(layout.buildDirectory.dir("outputs/native-debug-symbols"))
}

/** The Kotlin bindings, generated from the library by `cargo xtask bindings` (never edited). */
val generateBindings by tasks.registering(Exec::class) {
    group = "rust"
    description = "Generates the UniFFI Kotlin bindings into target/bindings/kotlin"
    workingDir = workspace
    commandLine("cargo", "xtask", "bindings")
    inputs.files(fileTree(workspace) { include("bindings/src/**", "uniffi.toml") })
    outputs.dir(workspace.resolve("target/bindings/kotlin"))
}

android {
    namespace = "com.upn.driver"
    compileSdk = 35
    // r28+: 16 KB page-aligned ELF segments by default (Android 15 devices with 16 KB pages).
    ndkVersion = "28.0.13004108"

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets["main"].apply {
        kotlin.srcDir("src/main/kotlin")
        kotlin.srcDir(workspace.resolve("target/bindings/kotlin"))
        jniLibs.srcDir(jniLibsOut)
    }

    // FakeDriverCore, for the app's unit tests: testImplementation(testFixtures("com.upn.driver:upn-driver-core:<version>")).
    // Sources in src/testFixtures/kotlin/ (AGP's default folder for the source set).
    testFixtures {
        enable = true
    }

    packaging {
        // The AAR keeps the line tables; the app's build strips them (and extracts the symbols).
        jniLibs.keepDebugSymbols += "**/libupn_ffi.so"
    }

    publishing {
        singleVariant("release") {
            withSourcesJar()
        }
    }
}

kotlin {
    jvmToolchain(17)
}

tasks.named("preBuild") {
    dependsOn(cargoNdkBuild, generateBindings)
}

dependencies {
    // UniFFI's Kotlin calls into the library through JNA; the AAR carries its native dispatch
    // lib. 5.17+: its libjnidispatch.so is 16 KB page-aligned.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
    // NotificationCompat for DrainWorker's foreground notification (already a work-runtime dependency).
    implementation("androidx.core:core-ktx:1.13.1")
    // The fixtures' public API names the generated types and the facade.
    testFixturesApi("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
}

// `gradle publishToMavenLocal`, or a composite build: `includeBuild("…/android")` in the app's
// settings substitutes com.upn.driver:upn-driver-core (group + the root project's name) by this
// module, so the artifact id must stay the project's name.
publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = "com.upn.driver"
            artifactId = rootProject.name
            version = project.version.toString()
            // The component exists once AGP has configured the variants.
            afterEvaluate { from(components["release"]) }
            pom {
                name.set("UPN Driver Core")
                description.set("Offline-first core of the UPN delivery driver's app: Kotlin facade, WorkManager glue, libupn_ffi.so")
                licenses {
                    license { name.set("MIT OR Apache-2.0") }
                }
            }
        }
    }
}
