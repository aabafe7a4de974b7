// The UPN Driver Core Android library, as a standalone Gradle build inside the Rust workspace.
// Include it in an app build with `includeBuild("path/to/upn-driver-core/android")`, or copy the
// module. It cannot be built on the project's CI machine (no Android SDK or NDK there): see
// README.md for what is checked there instead.

pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "upn-driver-core"
