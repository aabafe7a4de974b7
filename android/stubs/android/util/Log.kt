package android.util

// Compile-only stub (see android/stubs/README.md): the signatures LogcatLogListener uses.
object Log {
    @JvmStatic fun e(tag: String, msg: String): Int = TODO("compile-only stub")

    @JvmStatic fun w(tag: String, msg: String): Int = TODO("compile-only stub")

    @JvmStatic fun i(tag: String, msg: String): Int = TODO("compile-only stub")

    @JvmStatic fun d(tag: String, msg: String): Int = TODO("compile-only stub")

    @JvmStatic fun v(tag: String, msg: String): Int = TODO("compile-only stub")
}
