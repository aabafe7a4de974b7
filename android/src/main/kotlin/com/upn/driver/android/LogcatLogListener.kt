package com.upn.driver.android

import android.util.Log
import com.upn.driver.core.LogLevel
import com.upn.driver.core.LogListener
import com.upn.driver.core.LogRecord
import com.upn.driver.core.setLogListener

/**
 * The core's log lines in logcat, under one tag. Install once, at app start:
 *
 * ```
 * LogcatLogListener.install(minLevel = if (BuildConfig.DEBUG) LogLevel.DEBUG else LogLevel.INFO)
 * ```
 *
 * Lines carry no API key, signature or photo; the core calls this on a thread of its own and
 * drops lines (counted) rather than wait if logcat is slow.
 */
class LogcatLogListener(
    private val tag: String = "UpnCore",
) : LogListener {
    override fun onLog(record: LogRecord) {
        val text = "${record.target}: ${record.message}"
        when (record.level) {
            LogLevel.ERROR -> Log.e(tag, text)
            LogLevel.WARN -> Log.w(tag, text)
            LogLevel.INFO -> Log.i(tag, text)
            LogLevel.DEBUG -> Log.d(tag, text)
            LogLevel.TRACE -> Log.v(tag, text)
        }
    }

    companion object {
        /** Sets the process's one log listener (a second call throws `CoreException.InvalidInput`). */
        fun install(
            minLevel: LogLevel = LogLevel.INFO,
            tag: String = "UpnCore",
        ) = setLogListener(LogcatLogListener(tag), minLevel)
    }
}
