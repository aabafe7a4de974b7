// A scripted DriverCoreProtocol for the app's unit tests: no native library, no network, no
// database. `DriverSession(core: FakeDriverCore(stops: [...]))`. The Swift twin of the Kotlin
// `com.upn.driver.testing.FakeDriverCore`. Not compiled on the project's CI machine (no Swift
// toolchain there): the Kotlin fake, which does the same, is compiled and tested there.

import Foundation
import UpnDriverCore

/// One call the app made on the fake, with its arguments (image data as its size).
public struct FakeCall: Equatable, Sendable {
    public let method: String
    public let args: [String]
}

/// What the fake does by itself, like the real core: `scriptedStops` are the stop list; captures of a
/// stop not in it throw `CoreError.NotFound`; `addPhoto` waits for its POD, `sign` queues
/// (replacing an unsent POD); `syncNow` / `drain` "send" every queued item; `subscribe` replays
/// every stop and pending item, then relays changes and the `emit…` calls; after `shutdown`
/// calls throw `CoreError.ShutDown`. Everything else is scripted with the `on…` answers (an
/// unscripted one throws `FakeDriverCore.Unscripted`, naming what to set). Thread-safe.
public final class FakeDriverCore: DriverCoreProtocol, @unchecked Sendable {
    /// Thrown by a call whose answer was not scripted.
    public struct Unscripted: Error, CustomStringConvertible {
        public let answer: String
        public var description: String { "FakeDriverCore: this call has no scripted answer; set fake.\(answer)" }
    }

    private let lock = NSRecursiveLock()
    private var recorded: [FakeCall] = []
    private var listeners: [FakeListenerHandle] = []
    private var items: [OutboxItemRecord] = []
    private var failures: [String: CoreError] = [:]
    private var nextId = 1
    private var isShutDown = false
    private var stopList: [StopRecord]
    private var onlineNow = false
    private var meteredNow = false
    private var policy: DataSaver = .off
    private var meteredPhotoBytes: UInt64 = 0

    public init(stops: [StopRecord] = []) { stopList = stops }

    /// The stop list, in order. Set it to script an import. (Not `stops`: that is the protocol's
    /// method, and Swift allows no property of the same name.)
    public var scriptedStops: [StopRecord] {
        get { locked { stopList } }
        set { locked { stopList = newValue } }
    }
    /// Every call made on the fake, in order.
    public var calls: [FakeCall] { locked { recorded } }
    public var methods: [String] { calls.map(\.method) }
    public var online: Bool { locked { onlineNow } }
    /// What `setNetwork` last said about metered (`setOnline` keeps it).
    public var metered: Bool { locked { meteredNow } }
    /// Consignment details by barcode (`consignment` throws `NotFound` for others).
    public var consignments: [String: ConsignmentRecord] = [:]

    public var onImportNow: () async throws -> ImportSummary = { throw Unscripted(answer: "onImportNow") }
    public var onPullTrackingNow: () async throws -> TrackingSummary = { throw Unscripted(answer: "onPullTrackingNow") }
    public var onTimeline: (String) throws -> TimelineRecord = { _ in throw Unscripted(answer: "onTimeline") }
    public var onTrackingHealth: () throws -> TrackingHealthRecord = { throw Unscripted(answer: "onTrackingHealth") }
    public var onDiagnostics: () throws -> DiagnosticsRecord = { throw Unscripted(answer: "onDiagnostics") }
    public var onDiagnose: (String?, Data?) async throws -> DiagnosisRecord = { _, _ in throw Unscripted(answer: "onDiagnose") }
    public var onSupportBundle: ([String], String?) async throws -> Data = { _, _ in throw Unscripted(answer: "onSupportBundle") }
    public var onReceiptHtml: (String) async throws -> String = { _ in throw Unscripted(answer: "onReceiptHtml") }
    public var onVerifyPod: (String) async throws -> PodVerificationRecord = { _ in throw Unscripted(answer: "onVerifyPod") }
    public var onCaptureImage: (String, UInt32?) async throws -> CaptureImageRecord = { _, _ in throw Unscripted(answer: "onCaptureImage") }
    public var onMatchInvoice: (Data) throws -> InvoiceMatchRecord = { _ in throw Unscripted(answer: "onMatchInvoice") }

    /// The next call of `method` (e.g. `"syncNow"`) throws `error` instead.
    public func failNext(_ method: String, _ error: CoreError) { locked { failures[method] = error } }

    public func emitStopChanged(_ stop: StopRecord) { emit { $0.onStopChanged(stop: stop) } }
    public func emitOutboxItemChanged(_ item: OutboxItemRecord) { emit { $0.onOutboxItemChanged(item: item) } }
    public func emitUploadProgress(_ progress: UploadProgressRecord) { emit { $0.onUploadProgress(progress: progress) } }

    private func emit(_ call: (DriverListener) -> Void) {
        locked { for handle in listeners { handle.deliver(call) } }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private func enter(_ method: String, _ args: Any?...) throws {
        try locked {
            recorded.append(FakeCall(method: method, args: args.map { arg in
                if let data = arg as? Data { return "\(data.count) bytes" }
                return arg.map { "\($0)" } ?? "nil"
            }))
            if let failure = failures.removeValue(forKey: method) { throw failure }
            if isShutDown { throw CoreError.ShutDown }
        }
    }

    private func requireStop(_ barcode: String) throws {
        guard scriptedStops.contains(where: { $0.barcode == barcode }) else { throw CoreError.NotFound(barcode: barcode) }
    }

    public func setOnline(online: Bool) {
        locked {
            recorded.append(FakeCall(method: "setOnline", args: ["\(online)"]))
            if !isShutDown { onlineNow = online }
        }
    }

    public func setNetwork(online: Bool, metered: Bool) {
        locked {
            recorded.append(FakeCall(method: "setNetwork", args: ["\(online)", "\(metered)"]))
            if !isShutDown {
                onlineNow = online
                meteredNow = metered
            }
        }
    }

    /// Like the core: a budget outside 1 MB...10 GB throws `InvalidInput` and changes nothing.
    public func setDataSaver(policy: DataSaver) throws {
        try enter("setDataSaver", policy)
        if case let .meteredPhotoBudget(bytes) = policy, !(1_000_000...10_000_000_000).contains(bytes) {
            throw CoreError.InvalidInput(field: "data_saver.bytes_per_day", reason: "\(bytes) bytes is out of range; give 1 MB to 10 GB")
        }
        locked { self.policy = policy }
    }

    public func dataSaver() throws -> DataSaver {
        try enter("dataSaver")
        return locked { policy }
    }

    public func dataSaverStatus() throws -> DataSaverStatusRecord {
        try enter("dataSaverStatus")
        return locked {
            DataSaverStatusRecord(policy: policy, online: onlineNow, metered: meteredNow,
                                  meteredPhotoBytesToday: meteredPhotoBytes, held: UInt32(holds().count))
        }
    }

    /// The queued photos the data saver holds now, with the reason (call under the lock).
    private func holds() -> [String: OutboxReason] {
        guard meteredNow else { return [:] }
        var spent = meteredPhotoBytes
        var held: [String: OutboxReason] = [:]
        for item in items where item.kind != .pod && item.state == .queued {
            switch policy {
            case .off: break
            case .photosOnUnmetered: held[item.id] = .heldUntilUnmetered
            case let .meteredPhotoBudget(budget):
                if spent + item.bytes > budget { held[item.id] = .heldByBudget } else { spent += item.bytes }
            }
        }
        return held
    }

    public func isOnline() -> Bool { online }

    public func importNow() async throws -> ImportSummary {
        try enter("importNow")
        return try await importSummary()
    }

    private func importSummary() async throws -> ImportSummary {
        do { return try await onImportNow() } catch is Unscripted {
            return ImportSummary(
                added: 0, updated: 0, unchanged: UInt32(scriptedStops.count), cancelled: 0, refused: 0,
                serverTimeMs: Int64(Date().timeIntervalSince1970 * 1000))
        }
    }

    public func syncNow() async throws -> SyncSummary {
        try enter("syncNow")
        let summary = try await importSummary()
        return SyncSummary(import: summary, flush: sendQueued(), tracking: nil, trackingError: nil)
    }

    public func pullTrackingNow() async throws -> TrackingSummary {
        try enter("pullTrackingNow")
        return try await onPullTrackingNow()
    }

    public func timeline(barcode: String) throws -> TimelineRecord {
        try enter("timeline", barcode)
        return try onTimeline(barcode)
    }

    public func trackingHealth() throws -> TrackingHealthRecord {
        try enter("trackingHealth")
        return try onTrackingHealth()
    }

    public func drain(deadlineMs: UInt64) async throws -> DrainSummary {
        try enter("drain", deadlineMs)
        let flush = sendQueued()
        let (pending, held) = locked { (items.filter { $0.state == .waiting }.count, holds().count) }
        return DrainSummary(flush: flush, pending: UInt32(pending + held), heldByDataSaver: UInt32(held))
    }

    public func stops() throws -> [StopRecord] {
        try enter("stops")
        return scriptedStops
    }

    public func consignment(barcode: String) throws -> ConsignmentRecord {
        try enter("consignment", barcode)
        guard let record = locked({ consignments[barcode] }) else { throw CoreError.NotFound(barcode: barcode) }
        return record
    }

    public func addPhoto(
        barcode: String, photo: Data, kind: PhotoKind, capturedAtMs: Int64, gps: GpsFixRecord?
    ) async throws -> OutboxItemRecord {
        try enter("addPhoto", barcode, photo, kind, capturedAtMs, gps)
        try requireStop(barcode)
        let captureKind: CaptureKind =
            switch kind {
            case .goods: .goods
            case .location: .location
            case .leaveSafe: .leaveSafe
            }
        let item = locked {
            let signed = items.contains { $0.barcode == barcode && $0.kind == .pod && Self.live($0.state) }
            return newItem(barcode, captureKind, signed ? .queued : .waiting, capturedAtMs, photo.count)
        }
        announce([item], barcode)
        return item
    }

    public func sign(
        barcode: String, signature: Data, signedBy: String, capturedAtMs: Int64, gps: GpsFixRecord?
    ) async throws -> SignResult {
        try enter("sign", barcode, signature, signedBy, capturedAtMs, gps)
        try requireStop(barcode)
        let (result, changed): (SignResult, [OutboxItemRecord]) = try locked {
            var changed: [OutboxItemRecord] = []
            var replaced: String?
            if let i = items.firstIndex(where: { $0.barcode == barcode && $0.kind == .pod && Self.live($0.state) }) {
                if items[i].state == .sent { throw CoreError.AlreadySigned(barcode: barcode) }
                items[i].state = .replaced
                replaced = items[i].id
                changed.append(items[i])
            }
            let item = newItem(barcode, .pod, .queued, capturedAtMs, signature.count)
            changed.append(item)
            for i in items.indices where items[i].barcode == barcode && items[i].state == .waiting {
                items[i].state = .queued
                changed.append(items[i])
            }
            return (SignResult(item: item, replacedCaptureId: replaced, staleGps: false), changed)
        }
        announce(changed, barcode)
        return result
    }

    public func outbox() throws -> [OutboxItemRecord] {
        try enter("outbox")
        return locked {
            let held = holds()
            return items.filter { Self.pending($0.state) }.map { item in
                var item = item
                if let reason = held[item.id] { item.reason = reason }
                return item
            }
        }
    }

    public func outboxStats() throws -> OutboxStatsRecord {
        try enter("outboxStats")
        return locked {
            func count(_ state: OutboxState) -> UInt32 { UInt32(items.filter { $0.state == state }.count) }
            let pending = items.filter { Self.pending($0.state) }
            return OutboxStatsRecord(
                waiting: count(.waiting), queued: count(.queued), sending: count(.sending),
                needsAttention: count(.needsAttention), sent: count(.sent),
                oldestPendingCapturedAtMs: pending.map(\.capturedAtMs).min(),
                bytesPending: pending.reduce(0) { $0 + $1.bytes },
                lastSuccessAtMs: items.compactMap(\.sentAtMs).max(),
                pausedReason: nil, imagesPausedReason: nil)
        }
    }

    public func retry(captureId: String) throws -> OutboxItemRecord {
        try enter("retry", captureId)
        return try setState(captureId, .queued)
    }

    public func retryAll() throws -> [OutboxItemRecord] {
        try enter("retryAll")
        let ids = locked { items.filter { $0.state == .needsAttention }.map(\.id) }
        return try ids.map { try setState($0, .queued) }
    }

    public func discard(captureId: String) throws -> OutboxItemRecord {
        try enter("discard", captureId)
        return try setState(captureId, .discarded)
    }

    public func subscribe(listener: DriverListener) throws -> ListenerHandle {
        try enter("subscribe")
        let handle = FakeListenerHandle(listener) { [weak self] handle in
            self?.locked { self?.listeners.removeAll { $0 === handle } }
        }
        // Like the core: the current state first, then changes, with nothing in between.
        locked {
            for stop in stopList { handle.deliver { $0.onStopChanged(stop: stop) } }
            for item in items where Self.pending(item.state) { handle.deliver { $0.onOutboxItemChanged(item: item) } }
            listeners.append(handle)
        }
        return handle
    }

    public func diagnostics() throws -> DiagnosticsRecord {
        try enter("diagnostics")
        return try onDiagnostics()
    }

    public func diagnose(barcode: String?, invoiceCsv: Data?) async throws -> DiagnosisRecord {
        try enter("diagnose", barcode, invoiceCsv)
        return try await onDiagnose(barcode, invoiceCsv)
    }

    public func supportBundle(barcodes: [String], appVersion: String?) async throws -> Data {
        try enter("supportBundle", barcodes, appVersion)
        return try await onSupportBundle(barcodes, appVersion)
    }

    public func receiptHtml(barcode: String) async throws -> String {
        try enter("receiptHtml", barcode)
        return try await onReceiptHtml(barcode)
    }

    public func verifyPod(barcode: String) async throws -> PodVerificationRecord {
        try enter("verifyPod", barcode)
        return try await onVerifyPod(barcode)
    }

    public func captureImage(captureId: String, longSide: UInt32?) async throws -> CaptureImageRecord {
        try enter("captureImage", captureId, longSide)
        return try await onCaptureImage(captureId, longSide)
    }

    public func matchInvoice(csv: Data) throws -> InvoiceMatchRecord {
        try enter("matchInvoice", csv)
        return try onMatchInvoice(csv)
    }

    public func shutdown(timeoutMs: UInt64) async {
        locked {
            recorded.append(FakeCall(method: "shutdown", args: ["\(timeoutMs)"]))
            isShutDown = true
            onlineNow = false
        }
    }

    // MARK: - The fake outbox

    private func newItem(
        _ barcode: String, _ kind: CaptureKind, _ state: OutboxState, _ capturedAtMs: Int64, _ bytes: Int
    ) -> OutboxItemRecord {
        let item = OutboxItemRecord(
            id: "fake-capture-\(nextId)", barcode: barcode, kind: kind, state: state, attempts: 0,
            nextAttemptAtMs: nil, lastError: nil, capturedAtMs: capturedAtMs, bytes: UInt64(bytes),
            sentAtMs: nil, upnReference: nil)
        nextId += 1
        items.append(item)
        return item
    }

    private func setState(_ captureId: String, _ state: OutboxState) throws -> OutboxItemRecord {
        let item: OutboxItemRecord = try locked {
            guard let i = items.firstIndex(where: { $0.id == captureId }) else {
                throw CoreError.InvalidInput(field: "capture_id", reason: "no capture \(captureId) on this fake")
            }
            items[i].state = state
            return items[i]
        }
        announce([item], item.barcode)
        return item
    }

    private func sendQueued() -> FlushSummary {
        let sent: [OutboxItemRecord] = locked {
            var sent: [OutboxItemRecord] = []
            let held = holds()
            for i in items.indices where items[i].state == .queued && held[items[i].id] == nil {
                if meteredNow && items[i].kind != .pod { meteredPhotoBytes += items[i].bytes }
                items[i].state = .sent
                items[i].attempts += 1
                items[i].sentAtMs = Int64(Date().timeIntervalSince1970 * 1000)
                items[i].upnReference = "FAKE-\(items[i].id)"
                sent.append(items[i])
            }
            return sent
        }
        for item in sent {
            emitUploadProgress(UploadProgressRecord(
                captureId: item.id, barcode: item.barcode, sentBytes: item.bytes, totalBytes: item.bytes))
        }
        for barcode in Set(sent.map(\.barcode)) { announce(sent.filter { $0.barcode == barcode }, barcode) }
        return FlushSummary(sent: UInt32(sent.count), retrying: 0, needsAttention: 0, paused: 0, ended: .done)
    }

    private func announce(_ changed: [OutboxItemRecord], _ barcode: String) {
        changed.forEach(emitOutboxItemChanged)
        let stop: StopRecord? = locked {
            let live = items.filter { $0.barcode == barcode && Self.live($0.state) }
            guard let i = stopList.firstIndex(where: { $0.barcode == barcode }) else { return nil }
            stopList[i].sync = Self.badge(live)
            return stopList[i]
        }
        if let stop { emitStopChanged(stop) }
    }

    private static func badge(_ live: [OutboxItemRecord]) -> SyncBadge {
        if live.isEmpty { return .nothingCaptured }
        if live.contains(where: { $0.state == .needsAttention }) { return .needsAttention }
        if !live.contains(where: { $0.kind == .pod }) { return .waitingForSignature }
        if live.allSatisfy({ $0.state == .sent }) { return .sent }
        if live.contains(where: { $0.state == .sending }) { return .sending }
        return .queued
    }

    private static func live(_ state: OutboxState) -> Bool { state != .replaced && state != .discarded }
    private static func pending(_ state: OutboxState) -> Bool { live(state) && state != .sent }

    /// A stop for scripting `scriptedStops`, with plausible values for what a test does not care about.
    public static func stop(
        _ barcode: String, position: UInt32 = 1, status: String = "imported",
        sync: SyncBadge = .nothingCaptured, consignee: String? = nil
    ) -> StopRecord {
        StopRecord(
            position: position, barcode: barcode, consignee: consignee ?? "Consignee of \(barcode)",
            address: "1 Test Street, Testtown", postcode: "TE1 1ST", lat: 52.48, lon: -1.89,
            palletCount: 1, weightKg: 250.0, service: "standard", window: nil, instructions: nil,
            status: status, sync: sync)
    }
}

/// Stands in for a listener in a handle that never had one.
private final class NoListener: DriverListener, @unchecked Sendable {
    func onStopChanged(stop: StopRecord) {}
    func onOutboxItemChanged(item: OutboxItemRecord) {}
    func onUploadProgress(progress: UploadProgressRecord) {}
}

/// The handle `FakeDriverCore.subscribe` returns: a generated `ListenerHandle` with no native object.
public final class FakeListenerHandle: ListenerHandle, @unchecked Sendable {
    private let listener: DriverListener
    private let onCancel: (FakeListenerHandle) -> Void
    private let lock = NSLock()
    private var active = true

    init(_ listener: DriverListener, onCancel: @escaping (FakeListenerHandle) -> Void) {
        self.listener = listener
        self.onCancel = onCancel
        super.init(noHandle: ListenerHandle.NoHandle())
    }

    // Required by the generated class; only its FFI converter calls it, never for a fake.
    public required init(unsafeFromHandle handle: UInt64) {
        listener = NoListener()
        onCancel = { _ in }
        super.init(noHandle: ListenerHandle.NoHandle())
        active = false
    }

    func deliver(_ call: (DriverListener) -> Void) {
        lock.lock()
        let isActive = active
        lock.unlock()
        if isActive { call(listener) }
    }

    override public func cancel() {
        lock.lock()
        let wasActive = active
        active = false
        lock.unlock()
        if wasActive { onCancel(self) }
    }

    override public func isActive() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return active
    }
}
