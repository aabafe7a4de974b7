// Android library: the UniFFI-generated Kotlin bindings (`com.upn.driver.core`), the Kotlin
// facade (`com.upn.driver`), the Android glue (`com.upn.driver.android`) and libupn_ffi.so for
// arm64-v8a, armeabi-v7a and x86_64, built by cargo-ndk.
//
// Needs: the Android SDK + NDK (ANDROID_NDK_HOME), `rustup target add aarch64-linux-android
// armv7-linux-androideabi x86_64-linux-android`, and `cargo install cargo-ndk`.

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.20"
}

/** The Rust workspace this module lives in. */
val workspace: File = rootDir.parentFile
val jniLibsOut = layout.buildDirectory.dir("rustJniLibs")
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

/** libupn_ffi.so for every ABI, release profile (stripped, thin LTO), via cargo-ndk. */
val cargoNdkBuild by tasks.registering(Exec::class) {
    group = "rust"
    description = "Builds libupn_ffi.so for ${abis.joinToString()} with cargo-ndk"
    workingDir = workspace
    val targets = abis.flatMap { listOf("-t", it) }
    commandLine(
        listOf("cargo", "ndk") + targets +
            listOf("--platform", "24", "-o", jniLibsOut.get().asFile.absolutePath, "build", "--release", "-p", "upn-ffi"),
    )
    inputs.files(fileTree(workspace) { include("core/src/**", "bindings/src/**", "Cargo.toml", "Cargo.lock") })
    outputs.dir(jniLibsOut)
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
}

kotlin {
    jvmToolchain(17)
}

tasks.named("preBuild") {
    dependsOn(cargoNdkBuild, generateBindings)
}

dependencies {
    // UniFFI's Kotlin calls into the library through JNA; the AAR carries its native dispatch lib.
    implementation("net.java.dev.jna:jna:5.13.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
}
