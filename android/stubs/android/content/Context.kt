// Compile-only stub of the Android SDK (see android/stubs/README.md). Never run, never shipped.
package android.content

import java.io.File

abstract class Context {
    /** `getApplicationContext()`. */
    abstract val applicationContext: Context

    /** `getNoBackupFilesDir()`: app-private files that Auto Backup never copies off the device. */
    abstract val noBackupFilesDir: File

    /** `getSystemService(Class)`, `@Nullable` in the SDK. */
    fun <T> getSystemService(serviceClass: Class<T>): T? = TODO("compile-only stub")
}
