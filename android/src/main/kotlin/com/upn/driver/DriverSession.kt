package com.upn.driver

import com.upn.driver.core.CoreConfig
import com.upn.driver.core.CoreException
import com.upn.driver.core.ConsignmentRecord
import com.upn.driver.core.DiagnosticsRecord
import com.upn.driver.core.DrainSummary
import com.upn.driver.core.DriverCore
import com.upn.driver.core.DriverListener
import com.upn.driver.core.GpsFixRecord
import com.upn.driver.core.ImportSummary
import com.upn.driver.core.OutboxItemRecord
import com.upn.driver.core.OutboxStatsRecord
import com.upn.driver.core.PhotoKind
import com.upn.driver.core.SignResult
import com.upn.driver.core.StopRecord
import com.upn.driver.core.SyncSummary
import com.upn.driver.core.UploadProgressRecord
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.flowOn
import kotlinx.coroutines.withContext
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

// The idiomatic Kotlin face of the core. Pure JVM (no Android classes): it is compiled and
// tested on the JVM by `cargo xtask test`. The Android-only glue (WorkManager, connectivity)
// lives in the `android` sub-package beside it.

/** Everything the core tells the app, as one stream (see [DriverSession.updates]). */
sealed interface DriverUpdate {
    /** A stop's status or sync badge changed. */
    data class StopChanged(val stop: StopRecord) : DriverUpdate

    /** An outbox item changed state. */
    data class OutboxItemChanged(val item: OutboxItemRecord) : DriverUpdate

    /** Bytes of an upload on their way. */
    data class UploadProgress(val progress: UploadProgressRecord) : DriverUpdate
}

/**
 * One open core for one depot. Every call is safe from the main thread: reads run on [io],
 * network and image work are suspend functions of the core that never block a thread.
 * Failures are thrown as the typed [CoreException] subclasses.
 */
class DriverSession private constructor(
    /** The generated binding, for anything this facade does not cover. */
    val core: DriverCore,
    private val io: CoroutineDispatcher,
) : AutoCloseable {
    companion object {
        /** Opens (or creates) the core's database in [dataDir], the app's private folder. */
        suspend fun open(
            dataDir: String,
            config: CoreConfig,
            io: CoroutineDispatcher = Dispatchers.IO,
        ): DriverSession = withContext(io) { DriverSession(DriverCore.open(dataDir, config), io) }
    }

    /**
     * Changes as they happen, after a replay of the current state of every stop and outbox
     * item. Collecting subscribes; cancelling the collector unsubscribes. Nothing is dropped
     * (the buffer is unbounded; updates are small).
     */
    val updates: Flow<DriverUpdate> =
        callbackFlow {
            val handle =
                core.subscribe(
                    object : DriverListener {
                        override fun onStopChanged(stop: StopRecord) {
                            trySend(DriverUpdate.StopChanged(stop))
                        }

                        override fun onOutboxItemChanged(item: OutboxItemRecord) {
                            trySend(DriverUpdate.OutboxItemChanged(item))
                        }

                        override fun onUploadProgress(progress: UploadProgressRecord) {
                            trySend(DriverUpdate.UploadProgress(progress))
                        }
                    },
                )
            awaitClose {
                handle.cancel()
                handle.close()
            }
        }.buffer(Channel.UNLIMITED).flowOn(io)

    /** Report connectivity (see `ConnectivityReporter` on Android). Cheap; any thread. */
    fun setOnline(online: Boolean) = core.setOnline(online)

    suspend fun stops(): List<StopRecord> = withContext(io) { core.stops() }

    suspend fun consignment(barcode: String): ConsignmentRecord = withContext(io) { core.consignment(barcode) }

    suspend fun outbox(): List<OutboxItemRecord> = withContext(io) { core.outbox() }

    suspend fun outboxStats(): OutboxStatsRecord = withContext(io) { core.outboxStats() }

    suspend fun diagnostics(): DiagnosticsRecord = withContext(io) { core.diagnostics() }

    suspend fun retry(captureId: String): OutboxItemRecord = withContext(io) { core.retry(captureId) }

    suspend fun retryAll(): List<OutboxItemRecord> = withContext(io) { core.retryAll() }

    suspend fun discard(captureId: String): OutboxItemRecord = withContext(io) { core.discard(captureId) }

    suspend fun importNow(): ImportSummary = core.importNow()

    /** Import, then send what is due. Throws [CoreException.Offline] when UPN is unreachable. */
    suspend fun syncNow(): SyncSummary = core.syncNow()

    /** Background work within [budget] (WorkManager: see `DrainWorker`). */
    suspend fun drain(budget: Duration): DrainSummary = core.drain(budget.inWholeMilliseconds.coerceAtLeast(0).toULong())

    /**
     * A delivery photo (JPEG bytes as captured). Durable when this returns. Give a [captureId]
     * (a UUID the app keeps with the photo) to make a retry after a timeout or a process death
     * safe: the same id and bytes return the capture already stored; the same id with other
     * bytes throws [CoreException.CaptureIdConflict].
     */
    suspend fun addPhoto(
        barcode: String,
        jpeg: ByteArray,
        kind: PhotoKind = PhotoKind.GOODS,
        capturedAtMs: Long = System.currentTimeMillis(),
        gps: GpsFixRecord? = null,
        captureId: String? = null,
    ): OutboxItemRecord = core.addPhoto(barcode, jpeg, kind, capturedAtMs, gps, captureId)

    /**
     * The consignee's signature (PNG), printed name, time and place. Durable when this returns.
     * [captureId] as for [addPhoto]; a retry must repeat the same name and [capturedAtMs].
     */
    suspend fun sign(
        barcode: String,
        signaturePng: ByteArray,
        signedBy: String,
        capturedAtMs: Long = System.currentTimeMillis(),
        gps: GpsFixRecord? = null,
        captureId: String? = null,
    ): SignResult = core.sign(barcode, signaturePng, signedBy, capturedAtMs, gps, captureId)

    /** Stops background work, waiting at most [timeout] for requests in flight. */
    suspend fun shutdown(timeout: Duration = 5.seconds) = core.shutdown(timeout.inWholeMilliseconds.coerceAtLeast(0).toULong())

    /** Releases the native object (after [shutdown], or instead of it when the process ends). */
    override fun close() = core.close()
}

/**
 * Implemented by the app's `Application` so the Android glue (the drain worker) can reach the
 * one open session.
 */
interface DriverSessionProvider {
    suspend fun driverSession(): DriverSession
}
