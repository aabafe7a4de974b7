package com.upn.driver.android

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.OutOfQuotaPolicy
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import com.upn.driver.DriverSessionProvider
import com.upn.driver.core.CoreException
import com.upn.driver.core.DrainCancellation
import com.upn.driver.core.FlushEnd
import kotlinx.coroutines.Job
import kotlinx.coroutines.currentCoroutineContext
import java.util.concurrent.TimeUnit
import kotlin.time.Duration.Companion.minutes

/**
 * Sends what the driver captured while the app is in the background: WorkManager runs it when
 * the device has a network, and it calls `drain` with a budget inside WorkManager's 10-minute
 * window. The app's `Application` implements [DriverSessionProvider].
 *
 * ```
 * DrainWorker.schedule(context)   // once, e.g. in Application.onCreate
 * DrainWorker.drainSoon(context)  // after a capture, to send it even if the app goes away
 * ```
 */
class DrainWorker(
    context: Context,
    params: WorkerParameters,
) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val provider = applicationContext as? DriverSessionProvider ?: return Result.failure()
        // WorkManager stopping the worker (constraints lost, quota, the app killed) calls
        // CoroutineWorker's `onStopped`, which is final there and cancels this coroutine: that
        // cancels the drain through its token (and the core's own drop of the call), so the
        // outbox is released within moments and the next run does not queue behind this one.
        val cancellation = DrainCancellation()
        currentCoroutineContext()[Job]?.invokeOnCompletion { cancellation.cancel() }
        return try {
            val summary = provider.driverSession().drain(BUDGET, cancellation)
            when {
                summary.pending == 0u -> Result.success()
                // Stopped by WorkManager: it reschedules by itself.
                summary.flush.ended == FlushEnd.CANCELLED -> Result.retry()
                // Cut short by the deadline or the network: try again under the constraint.
                summary.flush.ended != FlushEnd.DONE -> Result.retry()
                // Only items waiting on a backoff or on a person remain: the core retries them.
                else -> Result.success()
            }
        } catch (e: CoreException.ShutDown) {
            Result.success()
        } catch (e: CoreException.Storage) {
            Result.retry()
        } catch (e: CoreException) {
            Result.failure()
        }
    }

    companion object {
        /** Well inside WorkManager's 10-minute limit. */
        val BUDGET = 8.minutes
        private const val PERIODIC = "upn-drain-periodic"
        private const val SOON = "upn-drain-soon"

        private val network =
            Constraints
                .Builder()
                .setRequiredNetworkType(NetworkType.CONNECTED)
                .build()

        /** A drain every 15 minutes while there is a network (WorkManager's shortest period). */
        fun schedule(context: Context) {
            val request =
                PeriodicWorkRequestBuilder<DrainWorker>(15, TimeUnit.MINUTES)
                    .setConstraints(network)
                    .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                    .build()
            WorkManager.getInstance(context).enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, request)
        }

        /** One drain as soon as there is a network (expedited when quota allows). */
        fun drainSoon(context: Context) {
            val request =
                OneTimeWorkRequestBuilder<DrainWorker>()
                    .setConstraints(network)
                    .setExpedited(OutOfQuotaPolicy.RUN_AS_NON_EXPEDITED_WORK_REQUEST)
                    .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                    .build()
            WorkManager.getInstance(context).enqueueUniqueWork(SOON, ExistingWorkPolicy.KEEP, request)
        }
    }
}
