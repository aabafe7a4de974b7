// Compile-only stub of the Android SDK (see android/stubs/README.md). Never run, never shipped.
@file:Suppress("ktlint", "ClassName")

package android

/** The platform's public resources (`android.R`); only the ids the library uses. */
object R {
    object drawable {
        /** The system's "uploading" status-bar icon. */
        const val stat_sys_upload: Int = 17301640
    }
}
