// Compile-only stub of androidx.work (see android/stubs/README.md). Never run, never shipped.
package androidx.work

import android.content.Context
import java.util.concurrent.TimeUnit

enum class BackoffPolicy { EXPONENTIAL, LINEAR }

enum class NetworkType { NOT_REQUIRED, CONNECTED, UNMETERED, NOT_ROAMING, METERED, TEMPORARILY_UNMETERED }

enum class OutOfQuotaPolicy { RUN_AS_NON_EXPEDITED_WORK_REQUEST, DROP_WORK_REQUEST }

enum class ExistingWorkPolicy { REPLACE, KEEP, APPEND, APPEND_OR_REPLACE }

enum class ExistingPeriodicWorkPolicy { REPLACE, KEEP, UPDATE, CANCEL_AND_REENQUEUE }

class Constraints {
    class Builder {
        fun setRequiredNetworkType(networkType: NetworkType): Builder = TODO("compile-only stub")

        fun build(): Constraints = TODO("compile-only stub")
    }
}

abstract class WorkRequest {
    abstract class Builder<B : Builder<B, *>, W : WorkRequest> {
        fun setConstraints(constraints: Constraints): B = TODO("compile-only stub")

        fun setBackoffCriteria(
            backoffPolicy: BackoffPolicy,
            backoffDelay: Long,
            timeUnit: TimeUnit,
        ): B = TODO("compile-only stub")

        fun setExpedited(policy: OutOfQuotaPolicy): B = TODO("compile-only stub")

        fun addTag(tag: String): B = TODO("compile-only stub")

        fun build(): W = TODO("compile-only stub")
    }
}

class OneTimeWorkRequest : WorkRequest() {
    class Builder(
        workerClass: Class<out ListenableWorker>,
    ) : WorkRequest.Builder<Builder, OneTimeWorkRequest>()
}

class PeriodicWorkRequest : WorkRequest() {
    class Builder(
        workerClass: Class<out ListenableWorker>,
        repeatInterval: Long,
        repeatIntervalTimeUnit: TimeUnit,
    ) : WorkRequest.Builder<Builder, PeriodicWorkRequest>()
}

/** work-runtime's Kotlin extension. */
inline fun <reified W : ListenableWorker> OneTimeWorkRequestBuilder(): OneTimeWorkRequest.Builder = OneTimeWorkRequest.Builder(W::class.java)

/** work-runtime's Kotlin extension. */
inline fun <reified W : ListenableWorker> PeriodicWorkRequestBuilder(
    repeatInterval: Long,
    repeatIntervalTimeUnit: TimeUnit,
): PeriodicWorkRequest.Builder = PeriodicWorkRequest.Builder(W::class.java, repeatInterval, repeatIntervalTimeUnit)

interface Operation

abstract class WorkManager {
    abstract fun enqueueUniqueWork(
        uniqueWorkName: String,
        existingWorkPolicy: ExistingWorkPolicy,
        work: OneTimeWorkRequest,
    ): Operation

    abstract fun enqueueUniquePeriodicWork(
        uniqueWorkName: String,
        existingPeriodicWorkPolicy: ExistingPeriodicWorkPolicy,
        periodicWork: PeriodicWorkRequest,
    ): Operation

    abstract fun cancelUniqueWork(uniqueWorkName: String): Operation

    companion object {
        @JvmStatic
        fun getInstance(context: Context): WorkManager = TODO("compile-only stub")
    }
}
