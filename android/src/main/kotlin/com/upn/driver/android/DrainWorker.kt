package com.upn.driver.android

import android.content.Context
import android.content.pm.ServiceInfo
import androidx.core.app.NotificationChannelCompat
import androidx.core.app.NotificationCompat
import androidx.core.app.NotificationManagerCompat
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.ForegroundInfo
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
 *
 * `drainSoon` asks for expedited work; below API 31 WorkManager runs expedited work as a
 * foreground service, with the notification from [getForegroundInfo] (a `dataSync` service:
 * the library's manifest declares the permissions and the service type, merged into the app's).
 * On API 33+ the notification shows only if the app holds `POST_NOTIFICATIONS`; the work runs
 * either way.
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

    /** Expedited work on API < 31 runs as a foreground service showing this notification. */
    override suspend fun getForegroundInfo(): ForegroundInfo = foregroundInfo(applicationContext)

    companion object {
        /** The notification shown while a drain runs as a foreground service; set before scheduling to localise. */
        @Volatile
        var notificationTitle: CharSequence = "Sending deliveries"

        /** The name of the notification channel in the system settings; set to localise. */
        @Volatile
        var channelName: CharSequence = "Delivery uploads"

        /** The notification channel and id of the drain's foreground notification. */
        const val CHANNEL_ID = "upn-drain"
        const val NOTIFICATION_ID = 0x5550_4e01

        /** What WorkManager shows while a drain runs as a foreground service (a `dataSync` one). */
        fun foregroundInfo(context: Context): ForegroundInfo {
            // Creating an existing channel again is a no-op; low importance: no sound, no peeking.
            NotificationManagerCompat.from(context).createNotificationChannel(
                NotificationChannelCompat
                    .Builder(CHANNEL_ID, NotificationManagerCompat.IMPORTANCE_LOW)
                    .setName(channelName)
                    .build(),
            )
            val notification =
                NotificationCompat
                    .Builder(context, CHANNEL_ID)
                    .setSmallIcon(android.R.drawable.stat_sys_upload)
                    .setContentTitle(notificationTitle)
                    .setOngoing(true)
                    .setOnlyAlertOnce(true)
                    .setSilent(true)
                    .build()
            return ForegroundInfo(NOTIFICATION_ID, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        }

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
