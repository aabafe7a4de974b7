package com.upn.driver.testing

import com.upn.driver.core.StopPhase
import com.upn.driver.core.WipeSummary
import com.upn.driver.core.DrainCancellation
import com.upn.driver.core.SyncOutcome
import com.upn.driver.core.CaptureImageRecord
import com.upn.driver.core.CaptureKind
import com.upn.driver.core.ConsignmentRecord
import com.upn.driver.core.DataSaver
import com.upn.driver.core.DataSaverStatusRecord
import com.upn.driver.core.OutboxReason
import com.upn.driver.core.CoreException
import com.upn.driver.core.DiagnosisRecord
import com.upn.driver.core.DiagnosticsRecord
import com.upn.driver.core.DrainSummary
import com.upn.driver.core.DriverCoreInterface
import com.upn.driver.core.DriverListener
import com.upn.driver.core.FlushEnd
import com.upn.driver.core.FlushSummary
import com.upn.driver.core.GpsFixRecord
import com.upn.driver.core.ImportSummary
import com.upn.driver.core.InvoiceMatchRecord
import com.upn.driver.core.ListenerHandle
import com.upn.driver.core.NoHandle
import com.upn.driver.core.OutboxItemRecord
import com.upn.driver.core.OutboxState
import com.upn.driver.core.OutboxStatsRecord
import com.upn.driver.core.PhotoKind
import com.upn.driver.core.PodVerificationRecord
import com.upn.driver.core.SignResult
import com.upn.driver.core.StopRecord
import com.upn.driver.core.SyncBadge
import com.upn.driver.core.SyncSummary
import com.upn.driver.core.TimelineRecord
import com.upn.driver.core.TrackingHealthRecord
import com.upn.driver.core.TrackingSummary
import com.upn.driver.core.UploadProgressRecord
import java.util.concurrent.CopyOnWriteArrayList

/** One call the app made on the fake, with its arguments (image bytes as their size). */
data class FakeCall(
    val method: String,
    val args: List<Any?> = emptyList(),
)

/**
 * A scripted [DriverCoreInterface] for the app's unit tests: no native library, no network, no
 * database. Hand it to `DriverSession(fake)` and drive the UI code under test:
 *
 * ```
 * val fake = FakeDriverCore(stops = listOf(FakeDriverCore.stop("UPN0420000001", position = 1u)))
 * val session = DriverSession(fake)
 * session.sign("UPN0420000001", png, "Jo Patel")      // recorded in fake.calls, queued in fake.outbox()
 * fake.emitStopChanged(fake.stops.single().copy(status = "out_for_delivery"))  // reaches session.updates
 * fake.failNext("syncNow", CoreException.Offline("no signal"))
 * ```
 *
 * What it does by itself, like the real core: [stops] are the stop list; captures of a stop not
 * in it throw [CoreException.NotFound]; `addPhoto` waits for its POD, `sign` queues (replacing an
 * unsent POD); `syncNow` / `drain` "send" every queued item; `subscribe` replays every stop and
 * outbox item, then relays changes and the `emit…` calls; after `shutdown` calls throw
 * [CoreException.ShutDown]. Everything else is scripted with the `on…` answers (an unscripted
 * one fails the test, naming what to set). Thread-safe.
 */
class FakeDriverCore(
    stops: List<StopRecord> = emptyList(),
) : DriverCoreInterface,
    AutoCloseable {
    private val lock = Any()

    // Held while an event is delivered and while a subscription replays and registers, so no
    // event falls between the replay and the registration (as in the real core).
    private val events = Any()
    private val recorded = CopyOnWriteArrayList<FakeCall>()
    private val listeners = CopyOnWriteArrayList<FakeListenerHandle>()
    private val items = mutableListOf<OutboxItemRecord>()
    private val failures = mutableMapOf<String, CoreException>()
    private var nextId = 1
    private var shutDown = false

    /** The stop list, in order. Set it to script an import; changes reach no listener by themselves. */
    @Volatile
    var stops: List<StopRecord> = stops

    /** What `setOnline` / `setNetwork` last said. */
    @Volatile
    var online: Boolean = false
        private set

    /** What `setNetwork` last said about metered (`setOnline` keeps it). */
    @Volatile
    var metered: Boolean = false
        private set

    private var dataSaver: DataSaver = DataSaver.Off
    private var meteredPhotoBytes: ULong = 0u

    /** Every call made on the fake, in order. */
    val calls: List<FakeCall> get() = recorded.toList()

    /** The names of the calls made, in order (`calls.map { it.method }`). */
    val methods: List<String> get() = recorded.map { it.method }

    /** Whether [close] was called. */
    @Volatile
    var closed: Boolean = false
        private set

    /** Consignment details by barcode (`consignment()` throws [CoreException.NotFound] for others). */
    val consignments: MutableMap<String, ConsignmentRecord> = java.util.concurrent.ConcurrentHashMap()

    var onImportNow: suspend () -> ImportSummary = {
        ImportSummary(added = 0u, updated = 0u, unchanged = stops.size.toUInt(), cancelled = 0u, refused = 0u, serverTimeMs = System.currentTimeMillis())
    }
    var onPullTrackingNow: suspend () -> TrackingSummary = { unscripted("onPullTrackingNow") }
    var onTimeline: (String) -> TimelineRecord = { unscripted("onTimeline") }
    var onTrackingHealth: () -> TrackingHealthRecord = { unscripted("onTrackingHealth") }
    var onDiagnostics: () -> DiagnosticsRecord = { unscripted("onDiagnostics") }
    var onDiagnose: suspend (String?, ByteArray?) -> DiagnosisRecord = { _, _ -> unscripted("onDiagnose") }
    var onSupportBundle: suspend (List<String>, String?) -> ByteArray = { _, _ -> unscripted("onSupportBundle") }
    var onReceiptHtml: suspend (String) -> String = { unscripted("onReceiptHtml") }
    var onVerifyPod: suspend (String) -> PodVerificationRecord = { unscripted("onVerifyPod") }
    var onCaptureImage: suspend (String, UInt?) -> CaptureImageRecord = { _, _ -> unscripted("onCaptureImage") }
    var onMatchInvoice: (ByteArray) -> InvoiceMatchRecord = { unscripted("onMatchInvoice") }

    /** The next call of [method] (its Kotlin name, e.g. `"syncNow"`) throws [error] instead. */
    fun failNext(
        method: String,
        error: CoreException,
    ) = synchronized(lock) { failures[method] = error }

    /** Tells every listener a stop changed (as an import or a tracking pull would). */
    fun emitStopChanged(stop: StopRecord) = emit { onStopChanged(stop) }

    fun emitOutboxItemChanged(item: OutboxItemRecord) = emit { onOutboxItemChanged(item) }

    fun emitUploadProgress(progress: UploadProgressRecord) = emit { onUploadProgress(progress) }

    private fun emit(call: DriverListener.() -> Unit) = synchronized(events) { listeners.forEach { it.deliver(call) } }

    private fun unscripted(answer: String): Nothing =
        throw AssertionError("FakeDriverCore: this call has no scripted answer; set fake.$answer")

    /** Records the call, then throws what [failNext] scripted or [CoreException.ShutDown] after shutdown. */
    private fun enter(
        method: String,
        vararg args: Any?,
    ) {
        recorded.add(FakeCall(method, args.map { if (it is ByteArray) "${it.size} bytes" else it }))
        synchronized(lock) {
            failures.remove(method)?.let { throw it }
            if (shutDown) throw CoreException.ShutDown()
        }
    }

    private fun stopOf(barcode: String): StopRecord = stops.firstOrNull { it.barcode == barcode } ?: throw CoreException.NotFound(barcode)

    override fun setOnline(online: Boolean) {
        recorded.add(FakeCall("setOnline", listOf(online)))
        if (!synchronized(lock) { shutDown }) this.online = online
    }

    override fun isOnline(): Boolean = online

    override fun setNetwork(
        online: Boolean,
        metered: Boolean,
    ) {
        recorded.add(FakeCall("setNetwork", listOf(online, metered)))
        if (!synchronized(lock) { shutDown }) {
            this.online = online
            this.metered = metered
        }
    }

    /** Like the core: a budget outside 1 MB..=10 GB throws `InvalidInput` and changes nothing. */
    override fun setDataSaver(policy: DataSaver) {
        enter("setDataSaver", policy)
        if (policy is DataSaver.MeteredPhotoBudget && policy.bytesPerDay !in 1_000_000uL..10_000_000_000uL) {
            throw CoreException.InvalidInput("data_saver.bytes_per_day", "${policy.bytesPerDay} bytes is out of range; give 1 MB to 10 GB")
        }
        synchronized(lock) { dataSaver = policy }
    }

    override fun dataSaver(): DataSaver {
        enter("dataSaver")
        return synchronized(lock) { dataSaver }
    }

    override fun dataSaverStatus(): DataSaverStatusRecord {
        enter("dataSaverStatus")
        return synchronized(lock) {
            DataSaverStatusRecord(policy = dataSaver, online = online, metered = metered, meteredPhotoBytesToday = meteredPhotoBytes, held = holds().size.toUInt())
        }
    }

    /** The queued photos the data saver holds now, with the reason (call under [lock]). */
    private fun holds(): Map<String, OutboxReason> {
        if (!metered) return emptyMap()
        var spent = meteredPhotoBytes
        val held = mutableMapOf<String, OutboxReason>()
        for (item in items.filter { it.kind != CaptureKind.POD && it.state == OutboxState.QUEUED }) {
            when (val policy = dataSaver) {
                DataSaver.Off -> {}
                DataSaver.PhotosOnUnmetered -> held[item.id] = OutboxReason.HeldUntilUnmetered
                is DataSaver.MeteredPhotoBudget ->
                    if (spent + item.bytes > policy.bytesPerDay) held[item.id] = OutboxReason.HeldByBudget else spent += item.bytes
            }
        }
        return held
    }

    override suspend fun importNow(): ImportSummary {
        enter("importNow")
        return onImportNow()
    }

    override suspend fun syncNow(): SyncSummary {
        enter("syncNow")
        val import = onImportNow()
        val flush = sendQueued()
        val pending = synchronized(lock) { items.count { it.state == OutboxState.QUEUED || it.state == OutboxState.WAITING }.toUInt() }
        return SyncSummary(
            outcome = if (pending == 0u) SyncOutcome.DONE else SyncOutcome.PENDING,
            import = import,
            importError = null,
            flush = flush,
            flushError = null,
            pending = pending,
            heldByDataSaver = synchronized(lock) { holds().size.toUInt() },
            tracking = null,
            trackingError = null,
        )
    }

    override suspend fun pullTrackingNow(): TrackingSummary {
        enter("pullTrackingNow")
        return onPullTrackingNow()
    }

    override fun timeline(barcode: String): TimelineRecord {
        enter("timeline", barcode)
        return onTimeline(barcode)
    }

    override fun trackingHealth(): TrackingHealthRecord {
        enter("trackingHealth")
        return onTrackingHealth()
    }

    override suspend fun drain(deadlineMs: ULong): DrainSummary {
        enter("drain", deadlineMs)
        val flush = sendQueued()
        return synchronized(lock) {
            val held = holds().size.toUInt()
            DrainSummary(flush = flush, pending = items.count { it.state == OutboxState.WAITING }.toUInt() + held, heldByDataSaver = held)
        }
    }

    override suspend fun drainCancellable(
        deadlineMs: ULong,
        cancellation: DrainCancellation,
    ): DrainSummary = if (cancellation.isCancelled()) {
        enter("drainCancellable", deadlineMs)
        DrainSummary(flush = FlushSummary(sent = 0u, retrying = 0u, needsAttention = 0u, paused = 0u, ended = FlushEnd.CANCELLED), pending = synchronized(lock) { items.count { it.state == OutboxState.QUEUED || it.state == OutboxState.WAITING }.toUInt() }, heldByDataSaver = synchronized(lock) { holds().size.toUInt() })
    } else {
        drain(deadlineMs)
    }

    override suspend fun wipe(force: Boolean): WipeSummary {
        enter("wipe", force)
        val unsent = synchronized(lock) { items.count { it.state == OutboxState.QUEUED || it.state == OutboxState.WAITING || it.state == OutboxState.NEEDS_ATTENTION } }
        if (unsent > 0 && !force) {
            throw CoreException.UnsentCaptures(unsent.toUInt(), "$unsent capture(s) are not yet at UPN")
        }
        synchronized(lock) {
            items.clear()
            shutDown = true
        }
        return WipeSummary(unsentDeleted = unsent.toUInt())
    }

    override fun stops(): List<StopRecord> {
        enter("stops")
        return stops
    }

    override fun consignment(barcode: String): ConsignmentRecord {
        enter("consignment", barcode)
        return consignments[barcode] ?: throw CoreException.NotFound(barcode)
    }

    override suspend fun addPhoto(
        barcode: String,
        photo: ByteArray,
        kind: PhotoKind,
        capturedAtMs: Long,
        gps: GpsFixRecord?,
        captureId: String?,
    ): OutboxItemRecord {
        enter("addPhoto", barcode, photo, kind, capturedAtMs, gps, captureId)
        stopOf(barcode)
        // An app's retry with the same capture id gets the capture it already made.
        synchronized(lock) { items.firstOrNull { captureId != null && it.id == captureId } }?.let { return it }
        val captureKind =
            when (kind) {
                PhotoKind.GOODS -> CaptureKind.GOODS
                PhotoKind.LOCATION -> CaptureKind.LOCATION
                PhotoKind.LEAVE_SAFE -> CaptureKind.LEAVE_SAFE
            }
        val item =
            synchronized(lock) {
                val signed = items.any { it.barcode == barcode && it.kind == CaptureKind.POD && it.state.live() }
                newItem(barcode, captureKind, if (signed) OutboxState.QUEUED else OutboxState.WAITING, capturedAtMs, photo.size)
            }
        announce(listOf(item), barcode)
        return item
    }

    override suspend fun sign(
        barcode: String,
        signature: ByteArray,
        signedBy: String,
        capturedAtMs: Long,
        gps: GpsFixRecord?,
        captureId: String?,
    ): SignResult {
        enter("sign", barcode, signature, signedBy, capturedAtMs, gps, captureId)
        stopOf(barcode)
        synchronized(lock) { items.firstOrNull { captureId != null && it.id == captureId } }
            ?.let { return SignResult(item = it, replacedCaptureId = null, staleGps = false) }
        val (result, changed) =
            synchronized(lock) {
                val pod = items.indexOfFirst { it.barcode == barcode && it.kind == CaptureKind.POD && it.state.live() }
                if (pod >= 0 && items[pod].state == OutboxState.SENT) throw CoreException.AlreadySigned(barcode)
                val replaced = if (pod >= 0) items[pod].copy(state = OutboxState.REPLACED).also { items[pod] = it } else null
                val item = newItem(barcode, CaptureKind.POD, OutboxState.QUEUED, capturedAtMs, signature.size)
                // Photos waiting for this POD may go now.
                val released =
                    items.indices.filter { items[it].barcode == barcode && items[it].state == OutboxState.WAITING }.map { i ->
                        items[i].copy(state = OutboxState.QUEUED).also { items[i] = it }
                    }
                SignResult(item = item, replacedCaptureId = replaced?.id, staleGps = false) to listOfNotNull(replaced) + item + released
            }
        announce(changed, barcode)
        return result
    }

    override fun outbox(): List<OutboxItemRecord> {
        enter("outbox")
        return synchronized(lock) {
            val held = holds()
            items.filter { it.state.pending() }.map { item -> held[item.id]?.let { item.copy(reason = it) } ?: item }
        }
    }

    override fun outboxStats(): OutboxStatsRecord {
        enter("outboxStats")
        return synchronized(lock) {
            fun count(state: OutboxState) = items.count { it.state == state }.toUInt()
            val pending = items.filter { it.state.pending() }
            OutboxStatsRecord(
                waiting = count(OutboxState.WAITING),
                queued = count(OutboxState.QUEUED),
                sending = count(OutboxState.SENDING),
                needsAttention = count(OutboxState.NEEDS_ATTENTION),
                sent = count(OutboxState.SENT),
                oldestPendingCapturedAtMs = pending.minOfOrNull { it.capturedAtMs },
                bytesPending = pending.sumOf { it.bytes },
                lastSuccessAtMs = items.mapNotNull { it.sentAtMs }.maxOrNull(),
                pausedReason = null,
                imagesPausedReason = null,
            )
        }
    }

    override fun retry(captureId: String): OutboxItemRecord {
        enter("retry", captureId)
        return setState(captureId, OutboxState.QUEUED)
    }

    override fun retryAll(): List<OutboxItemRecord> {
        enter("retryAll")
        val ids = synchronized(lock) { items.filter { it.state == OutboxState.NEEDS_ATTENTION }.map { it.id } }
        return ids.map { setState(it, OutboxState.QUEUED) }
    }

    override fun discard(captureId: String): OutboxItemRecord {
        enter("discard", captureId)
        return setState(captureId, OutboxState.DISCARDED)
    }

    override fun subscribe(listener: DriverListener): ListenerHandle {
        enter("subscribe")
        val handle = FakeListenerHandle(listener, listeners)
        // Like the core: the current state first, then changes.
        synchronized(events) {
            stops.forEach { stop -> handle.deliver { onStopChanged(stop) } }
            synchronized(lock) { items.toList() }.filter { it.state.pending() }.forEach { item -> handle.deliver { onOutboxItemChanged(item) } }
            listeners.add(handle)
        }
        return handle
    }

    override fun diagnostics(): DiagnosticsRecord {
        enter("diagnostics")
        return onDiagnostics()
    }

    override suspend fun diagnose(
        barcode: String?,
        invoiceCsv: ByteArray?,
    ): DiagnosisRecord {
        enter("diagnose", barcode, invoiceCsv)
        return onDiagnose(barcode, invoiceCsv)
    }

    override suspend fun supportBundle(
        barcodes: List<String>,
        appVersion: String?,
    ): ByteArray {
        enter("supportBundle", barcodes, appVersion)
        return onSupportBundle(barcodes, appVersion)
    }

    override suspend fun receiptHtml(barcode: String): String {
        enter("receiptHtml", barcode)
        return onReceiptHtml(barcode)
    }

    override suspend fun verifyPod(barcode: String): PodVerificationRecord {
        enter("verifyPod", barcode)
        return onVerifyPod(barcode)
    }

    override suspend fun captureImage(
        captureId: String,
        longSide: UInt?,
    ): CaptureImageRecord {
        enter("captureImage", captureId, longSide)
        return onCaptureImage(captureId, longSide)
    }

    override fun matchInvoice(csv: ByteArray): InvoiceMatchRecord {
        enter("matchInvoice", csv)
        return onMatchInvoice(csv)
    }

    override suspend fun shutdown(timeoutMs: ULong) {
        recorded.add(FakeCall("shutdown", listOf(timeoutMs)))
        synchronized(lock) { shutDown = true }
        online = false
    }

    override fun close() {
        closed = true
        listeners.toList().forEach { it.cancel() }
    }

    private fun newItem(
        barcode: String,
        kind: CaptureKind,
        state: OutboxState,
        capturedAtMs: Long,
        bytes: Int,
    ): OutboxItemRecord =
        OutboxItemRecord(
            id = "fake-capture-${nextId++}",
            barcode = barcode,
            kind = kind,
            state = state,
            attempts = 0u,
            nextAttemptAtMs = null,
            lastError = null,
            reason = null,
            capturedAtMs = capturedAtMs,
            bytes = bytes.toULong(),
            sentAtMs = null,
            upnReference = null,
        ).also { items.add(it) }

    private fun setState(
        captureId: String,
        state: OutboxState,
    ): OutboxItemRecord {
        val item =
            synchronized(lock) {
                val i = items.indexOfFirst { it.id == captureId }
                if (i < 0) throw CoreException.InvalidInput("capture_id", "no capture $captureId on this fake")
                items[i].copy(state = state).also { items[i] = it }
            }
        announce(listOf(item), item.barcode)
        return item
    }

    /**
     * "Sends" every queued item the data saver does not hold: SENT, with a reference, announced
     * with its progress. Photos sent on metered count against the budget.
     */
    private fun sendQueued(): FlushSummary {
        val sent =
            synchronized(lock) {
                val held = holds()
                items.indices.filter { items[it].state == OutboxState.QUEUED && items[it].id !in held }.map { i ->
                    if (metered && items[i].kind != CaptureKind.POD) meteredPhotoBytes += items[i].bytes
                    items[i].copy(state = OutboxState.SENT, attempts = items[i].attempts + 1u, sentAtMs = System.currentTimeMillis(), upnReference = "FAKE-${items[i].id}").also { items[i] = it }
                }
            }
        for (item in sent) emitUploadProgress(UploadProgressRecord(captureId = item.id, barcode = item.barcode, sentBytes = item.bytes, totalBytes = item.bytes))
        sent.groupBy { it.barcode }.forEach { (barcode, changed) -> announce(changed, barcode) }
        return FlushSummary(sent = sent.size.toUInt(), retrying = 0u, needsAttention = 0u, paused = 0u, ended = FlushEnd.DONE)
    }

    /** Tells listeners about changed items and the stop's new badge (and updates [stops]). */
    private fun announce(
        changed: List<OutboxItemRecord>,
        barcode: String,
    ) {
        changed.forEach(::emitOutboxItemChanged)
        val badge = synchronized(lock) { badgeOf(items.filter { it.barcode == barcode && it.state.live() }) }
        val updated = stops.map { if (it.barcode == barcode) it.copy(sync = badge) else it }
        stops = updated
        updated.firstOrNull { it.barcode == barcode }?.let(::emitStopChanged)
    }

    private fun badgeOf(live: List<OutboxItemRecord>): SyncBadge {
        val pod = live.firstOrNull { it.kind == CaptureKind.POD }
        return when {
            live.isEmpty() -> SyncBadge.NOTHING_CAPTURED
            live.any { it.state == OutboxState.NEEDS_ATTENTION } -> SyncBadge.NEEDS_ATTENTION
            pod == null -> SyncBadge.WAITING_FOR_SIGNATURE
            live.all { it.state == OutboxState.SENT } -> SyncBadge.SENT
            live.any { it.state == OutboxState.SENDING } -> SyncBadge.SENDING
            else -> SyncBadge.QUEUED
        }
    }

    private fun OutboxState.live() = this != OutboxState.REPLACED && this != OutboxState.DISCARDED

    private fun OutboxState.pending() = live() && this != OutboxState.SENT

    companion object {
        /** A stop for scripting [stops], with plausible values for what a test does not care about. */
        fun stop(
            barcode: String,
            position: UInt = 1u,
            status: String = "imported",
            sync: SyncBadge = SyncBadge.NOTHING_CAPTURED,
            consignee: String = "Consignee of $barcode",
        ) = StopRecord(
            position = position,
            barcode = barcode,
            consignee = consignee,
            address = "1 Test Street, Testtown",
            postcode = "TE1 1ST",
            lat = 52.48,
            lon = -1.89,
            palletCount = 1u,
            weightKg = 250.0,
            service = "standard",
            window = null,
            instructions = null,
            status = status,
            sync = sync,
            phase = if (status == "delivered") StopPhase.DONE else if (status == "cancelled") StopPhase.CANCELLED else StopPhase.OPEN,
        )
    }
}

/** The handle `FakeDriverCore.subscribe` returns: a generated [ListenerHandle] with no native object. */
class FakeListenerHandle internal constructor(
    private val listener: DriverListener,
    private val registry: MutableList<FakeListenerHandle>,
) : ListenerHandle(NoHandle) {
    @Volatile
    private var active = true

    internal fun deliver(call: DriverListener.() -> Unit) {
        if (active) listener.call()
    }

    override fun cancel() {
        active = false
        registry.remove(this)
    }

    override fun isActive(): Boolean = active

    override fun close() = cancel()
}
