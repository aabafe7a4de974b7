// Compile-only stub of the Android SDK (see android/stubs/README.md). Never run, never shipped.
package android.content.pm

class ServiceInfo {
    companion object {
        /** API 29: a foreground service that transfers data (the manifest's `dataSync`). */
        const val FOREGROUND_SERVICE_TYPE_DATA_SYNC: Int = 1
    }
}
