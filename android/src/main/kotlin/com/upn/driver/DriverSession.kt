package com.upn.driver

import com.upn.driver.core.CoreConfig
import com.upn.driver.core.CoreException
import com.upn.driver.core.DataSaver
import com.upn.driver.core.DataSaverStatusRecord
import com.upn.driver.core.ConsignmentRecord
import com.upn.driver.core.DiagnosticsRecord
import com.upn.driver.core.DrainCancellation
import com.upn.driver.core.DrainSummary
import com.upn.driver.core.DriverCore
import com.upn.driver.core.DriverCoreInterface
import com.upn.driver.core.DriverListener
import com.upn.driver.core.GpsFixRecord
import com.upn.driver.core.ImportSummary
import com.upn.driver.core.OutboxItemRecord
import com.upn.driver.core.OutboxStatsRecord
import com.upn.driver.core.PhotoKind
import com.upn.driver.core.SignResult
import com.upn.driver.core.StopListUpdateRecord
import com.upn.driver.core.StopRecord
import com.upn.driver.core.SyncSummary
import com.upn.driver.core.UploadProgressRecord
import com.upn.driver.core.WipeSummary
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.flowOn
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.withContext
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

// The idiomatic Kotlin face of the core. Pure JVM (no Android classes): it is compiled and
// tested on the JVM by `cargo xtask test`. The Android-only glue (WorkManager, connectivity)
// lives in the `android` sub-package beside it.

/** Everything the core tells the app, as one stream (see [DriverSession.updates]). */
sealed interface DriverUpdate {
    /** A stop was added, cancelled, or its status, sync badge, phase or position changed. */
    data class StopChanged(val stop: StopRecord) : DriverUpdate

    /**
     * A new version of the whole ordered stop list: after it the UI is consistent. The first
     * one a collector gets ends the replay (the snapshot); later ones have a greater `seq`.
     */
    data class StopListChanged(val update: StopListUpdateRecord) : DriverUpdate

    /** An outbox item changed state. */
    data class OutboxItemChanged(val item: OutboxItemRecord) : DriverUpdate

    /** Bytes of an upload on their way. */
    data class UploadProgress(val progress: UploadProgressRecord) : DriverUpdate
}

/**
 * One open core for one depot. Every call is safe from the main thread: reads run on [io],
 * network and image work are suspend functions of the core that never block a thread.
 * Failures are thrown as the typed [CoreException] subclasses.
 *
 * The session talks to the core through the generated [DriverCoreInterface], so an app's unit
 * tests can hand it a `FakeDriverCore` (the library's test fixtures) instead of [open]ing one:
 * `DriverSession(FakeDriverCore(stops = ...))`.
 */
class DriverSession(
    /** The generated binding, for anything this facade does not cover. */
    val core: DriverCoreInterface,
    private val io: CoroutineDispatcher = Dispatchers.IO,
) : AutoCloseable {
    companion object {
        /**
         * Opens (or creates) the core's database in [dataDir], an app-private folder that is not
         * backed up: on Android `context.upnDataDir()` (under `noBackupFilesDir`).
         */
        suspend fun open(
            dataDir: String,
            config: CoreConfig,
            io: CoroutineDispatcher = Dispatchers.IO,
        ): DriverSession = withContext(io) { DriverSession(DriverCore.open(dataDir, config), io) }
    }

    /**
     * Changes as they happen, after a replay of the current state of every stop and outbox
     * item ending with a [DriverUpdate.StopListChanged] (the snapshot). No gap between the
     * replay and the stream, nothing repeated. Collecting subscribes; cancelling the collector
     * unsubscribes. Nothing is dropped here (the buffer is unbounded; the core coalesces while
     * the app is slow, so it stays small).
     */
    val updates: Flow<DriverUpdate> =
        callbackFlow {
            val handle =
                core.subscribe(
                    object : DriverListener {
                        override fun onStopChanged(stop: StopRecord) {
                            trySend(DriverUpdate.StopChanged(stop))
                        }

                        override fun onStopListChanged(update: StopListUpdateRecord) {
                            trySend(DriverUpdate.StopListChanged(update))
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

    /**
     * The live stop list for a screen: the current list at once, then each new version; a slow
     * collector gets the latest (conflated). Open stops first, then [com.upn.driver.core.StopPhase.DONE_ON_DEVICE]
     * (signed here, shown as done at once), then done, then cancelled.
     */
    val stopList: Flow<StopListUpdateRecord> =
        updates
            .filterIsInstance<DriverUpdate.StopListChanged>()
            .map { it.update }
            .conflate()


    private val networkState = MutableStateFlow(NetworkStatus.OFFLINE)

    /**
     * The network as last reported ([setNetwork]; `ConnectivityReporter` on Android). The core
     * hears both: it syncs while [NetworkStatus.online], and on a [NetworkStatus.metered]
     * network photos obey the data saver ([setDataSaver]); signatures always go.
     */
    val network: StateFlow<NetworkStatus> = networkState.asStateFlow()

    // Held across the state change and the core call, so the core and [network] never disagree
    // when two threads report at once.
    private val networkLock = Any()

    /**
     * Report the network: the core syncs while it is online, and holds photos on a metered
     * network as the data saver says (going unmetered sends them at once). Cheap; any thread.
     */
    fun setNetwork(status: NetworkStatus) =
        synchronized(networkLock) {
            networkState.value = status
            core.setNetwork(status.online, status.metered)
        }

    /**
     * The driver's data saver (kept across restarts): [DataSaver.Off], photos only on Wi-Fi
     * ([DataSaver.PhotosOnUnmetered]), or a daily metered photo budget
     * ([DataSaver.MeteredPhotoBudget], 1 MB..=10 GB, else `CoreException.InvalidInput` and
     * nothing changes). A held photo stays queued with reason `HeldUntilUnmetered` /
     * `HeldByBudget`: not an error.
     */
    suspend fun setDataSaver(policy: DataSaver) = withContext(io) { core.setDataSaver(policy) }

    suspend fun dataSaver(): DataSaver = withContext(io) { core.dataSaver() }

    /** The policy, the network, today's metered photo bytes and how many photos are held. */
    suspend fun dataSaverStatus(): DataSaverStatusRecord = withContext(io) { core.dataSaverStatus() }

    /** Report connectivity alone; keeps the last reported [NetworkStatus.metered]. */
    fun setOnline(online: Boolean) = synchronized(networkLock) { setNetwork(networkState.value.copy(online = online)) }

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

    /**
     * Background work within [budget] (WorkManager: see `DrainWorker`). Stops within moments
     * when [cancellation] is cancelled or the calling coroutine is: the outbox is released at
     * once for the next drain, and what was cut short goes next time.
     */
    suspend fun drain(
        budget: Duration,
        cancellation: DrainCancellation = DrainCancellation(),
    ): DrainSummary = core.drainCancellable(budget.inWholeMilliseconds.coerceAtLeast(0).toULong(), cancellation)

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

    /**
     * Sign-out: removes everything the core made in its data folder and closes the core (later
     * calls throw `CoreException.ShutDown`). While captures are unsent it throws
     * `CoreException.UnsentCaptures` and changes nothing, unless [force] is true: ask the driver
     * first, then pass `force = true` only if they accept losing those deliveries' evidence.
     */
    suspend fun wipe(force: Boolean = false): WipeSummary = core.wipe(force)

    /** Stops background work, waiting at most [timeout] for requests in flight. */
    suspend fun shutdown(timeout: Duration = 5.seconds) = core.shutdown(timeout.inWholeMilliseconds.coerceAtLeast(0).toULong())

    /** Releases the native object (after [shutdown], or instead of it when the process ends). */
    override fun close() {
        (core as? AutoCloseable)?.close()
    }
}

/**
 * Implemented by the app's `Application` so the Android glue (the drain worker) can reach the
 * one open session.
 */
interface DriverSessionProvider {
    suspend fun driverSession(): DriverSession
}
