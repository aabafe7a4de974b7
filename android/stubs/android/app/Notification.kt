// Compile-only stub of the Android SDK (see android/stubs/README.md). Never run, never shipped.
package android.app

class Notification
