// Compile-only stub of androidx.work (see android/stubs/README.md). Never run, never shipped.
package androidx.work

import android.app.Notification
import android.content.Context

class WorkerParameters

class ForegroundInfo(
    notificationId: Int,
    notification: Notification,
    foregroundServiceType: Int,
)

abstract class ListenableWorker(
    appContext: Context,
    workerParams: WorkerParameters,
) {
    /** `getApplicationContext()`. */
    val applicationContext: Context get() = TODO("compile-only stub")

    /** `isStopped()`. */
    val isStopped: Boolean get() = TODO("compile-only stub")

    /** `getStopReason()` (work 2.9). */
    val stopReason: Int get() = TODO("compile-only stub")

    open fun onStopped() {}

    abstract class Result {
        companion object {
            @JvmStatic
            fun success(): Result = TODO("compile-only stub")

            @JvmStatic
            fun retry(): Result = TODO("compile-only stub")

            @JvmStatic
            fun failure(): Result = TODO("compile-only stub")
        }
    }
}

abstract class CoroutineWorker(
    appContext: Context,
    params: WorkerParameters,
) : ListenableWorker(appContext, params) {
    abstract suspend fun doWork(): Result

    /** Called for expedited work that runs as a foreground service (API < 31). */
    open suspend fun getForegroundInfo(): ForegroundInfo = TODO("compile-only stub")

    suspend fun setForeground(foregroundInfo: ForegroundInfo): Unit = TODO("compile-only stub")
}
