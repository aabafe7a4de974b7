// The idiomatic Swift face of UPN Driver Core: async functions, an AsyncStream of updates,
// connectivity from NWPathMonitor, and a BGProcessingTask handler that drains the outbox.
// Not compiled on the project's CI machine (no Swift toolchain there); the bindings it uses are
// generated there on every run.

import BackgroundTasks
import Foundation
import Network
import os
import UpnDriverCore

/// Everything the core tells the app, as one stream (see `DriverSession.updates()`).
public enum DriverUpdate: Sendable {
    case stopChanged(StopRecord)
    /// A new version of the whole ordered stop list; the first one ends the replay (snapshot).
    case stopListChanged(StopListUpdateRecord)
    case outboxItemChanged(OutboxItemRecord)
    case uploadProgress(UploadProgressRecord)
}

/// The device's network as the core and the app see it: the core syncs while `online`, and on a
/// `metered` path (expensive or Low Data Mode) photos obey the data saver; signatures always go.
public struct NetworkStatus: Equatable, Sendable {
    public var online: Bool
    public var metered: Bool
    public init(online: Bool, metered: Bool) {
        self.online = online
        self.metered = metered
    }
    public static let offline = NetworkStatus(online: false, metered: false)
}

/// One open core for one depot. Reads are quick and synchronous; network and image work are
/// `async` and never block the calling thread. Failures are thrown as `CoreError`.
///
/// The session talks to the core through the generated `DriverCoreProtocol`, so the app's unit
/// tests can hand it a `FakeDriverCore` (product `UpnDriverTesting`): `DriverSession(core: fake)`.
public final class DriverSession: @unchecked Sendable {
    /// The generated binding, for anything this facade does not cover.
    public let core: DriverCoreProtocol
    private let networkLock = NSLock()
    private var networkStatus = NetworkStatus.offline

    /// Opens (or creates) the core's database in `dataDirectory`, e.g.
    /// `Application Support/upn-driver`; the folder is excluded from iCloud and device backups (a
    /// restored outbox on another phone would send its PODs twice).
    public init(dataDirectory: URL, config: CoreConfig) throws {
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        var folder = dataDirectory
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try folder.setResourceValues(values)
        core = try DriverCore.open(dataDir: dataDirectory.path, config: config)
    }

    /// A session over any core: the app's unit tests pass a `FakeDriverCore`.
    public init(core: DriverCoreProtocol) {
        self.core = core
    }

    /// The network as last reported (`setNetwork`; `ConnectivityReporter`).
    public var network: NetworkStatus {
        networkLock.lock()
        defer { networkLock.unlock() }
        return networkStatus
    }

    /// Report the network: the core syncs while it is online, and holds photos on a metered
    /// path as the data saver says (going unmetered sends them at once). Cheap; any thread.
    public func setNetwork(_ status: NetworkStatus) { updateNetwork { $0 = status } }

    /// The driver's data saver (kept across restarts): `.off`, `.photosOnUnmetered` (Wi-Fi
    /// only), or `.meteredPhotoBudget(bytesPerDay:)` (1 MB...10 GB, else `CoreError.InvalidInput`
    /// and nothing changes). A held photo stays queued with reason `.heldUntilUnmetered` /
    /// `.heldByBudget`: not an error.
    public func setDataSaver(_ policy: DataSaver) throws { try core.setDataSaver(policy: policy) }
    public func dataSaver() throws -> DataSaver { try core.dataSaver() }
    public func dataSaverStatus() throws -> DataSaverStatusRecord { try core.dataSaverStatus() }

    // The lock is held across the change and the core call, so the core and `network` never
    // disagree when two threads report at once.
    private func updateNetwork(_ change: (inout NetworkStatus) -> Void) {
        networkLock.lock()
        defer { networkLock.unlock() }
        change(&networkStatus)
        core.setNetwork(online: networkStatus.online, metered: networkStatus.metered)
    }

    /// Changes as they happen, after a replay of the current state of every stop and outbox
    /// item. Iterating subscribes; ending the iteration (or cancelling its task) unsubscribes.
    public func updates() -> AsyncStream<DriverUpdate> {
        AsyncStream(bufferingPolicy: .unbounded) { continuation in
            do {
                let handle = try core.subscribe(listener: StreamListener(continuation))
                continuation.onTermination = { _ in handle.cancel() }
            } catch {
                continuation.finish()
            }
        }
    }

    /// The live stop list for a screen: the current list at once, then each new version (the
    /// newest only, when the consumer is slow). Open stops first, then `.doneOnDevice` (signed
    /// here, shown as done at once), then `.done`, then `.cancelled`.
    public func stopList() -> AsyncStream<StopListUpdateRecord> {
        AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let updates = self.updates()
            let task = Task {
                for await update in updates {
                    if case .stopListChanged(let list) = update { continuation.yield(list) }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Report connectivity alone; keeps the last reported `metered`.
    public func setOnline(_ online: Bool) { updateNetwork { $0.online = online } }

    public func stops() throws -> [StopRecord] { try core.stops() }
    public func consignment(_ barcode: String) throws -> ConsignmentRecord { try core.consignment(barcode: barcode) }
    public func timeline(_ barcode: String) throws -> TimelineRecord { try core.timeline(barcode: barcode) }
    public func outbox() throws -> [OutboxItemRecord] { try core.outbox() }
    public func outboxStats() throws -> OutboxStatsRecord { try core.outboxStats() }
    public func diagnostics() throws -> DiagnosticsRecord { try core.diagnostics() }
    public func retry(_ captureId: String) throws -> OutboxItemRecord { try core.retry(captureId: captureId) }
    public func retryAll() throws -> [OutboxItemRecord] { try core.retryAll() }
    public func discard(_ captureId: String) throws -> OutboxItemRecord { try core.discard(captureId: captureId) }

    public func importNow() async throws -> ImportSummary { try await core.importNow() }

    /// Import, send what is due, pull tracking. Throws `CoreError.Offline` when UPN is unreachable.
    public func syncNow() async throws -> SyncSummary { try await core.syncNow() }

    /// Background work within `budget` (see `BackgroundDrain`). Stops within moments when
    /// `cancellation.cancel()` is called or the calling task is cancelled: the outbox is released
    /// at once for the next drain, and what was cut short goes next time.
    public func drain(
        budget: Duration, cancellation: DrainCancellation = DrainCancellation()
    ) async throws -> DrainSummary {
        try await withTaskCancellationHandler {
            try await core.drainCancellable(
                deadlineMs: UInt64(max(0, budget.milliseconds)), cancellation: cancellation)
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// A delivery photo (JPEG data as captured). Durable when this returns. Give a `captureId`
    /// (a UUID the app keeps with the photo) to make a retry after a timeout or a relaunch
    /// safe: the same id and bytes return the capture already stored; the same id with other
    /// bytes throws `CoreError.CaptureIdConflict`.
    public func addPhoto(
        _ barcode: String, jpeg: Data, kind: PhotoKind = .goods,
        capturedAt: Date = Date(), gps: GpsFixRecord? = nil, captureId: String? = nil
    ) async throws -> OutboxItemRecord {
        try await core.addPhoto(
            barcode: barcode, photo: jpeg, kind: kind, capturedAtMs: capturedAt.epochMilliseconds, gps: gps,
            captureId: captureId)
    }

    /// The consignee's signature (PNG), printed name, time and place. Durable when this returns.
    /// `captureId` as for `addPhoto`; a retry must repeat the same name and `capturedAt`.
    public func sign(
        _ barcode: String, signaturePng: Data, signedBy: String,
        capturedAt: Date = Date(), gps: GpsFixRecord? = nil, captureId: String? = nil
    ) async throws -> SignResult {
        try await core.sign(
            barcode: barcode, signature: signaturePng, signedBy: signedBy,
            capturedAtMs: capturedAt.epochMilliseconds, gps: gps, captureId: captureId)
    }

    /// Stops background work, waiting at most `timeout` for requests in flight.
    /// Sign-out: removes everything the core made in its data folder and closes the core. While
    /// captures are unsent it throws `CoreError.UnsentCaptures` and changes nothing, unless
    /// `force` is true (ask the driver first).
    public func wipe(force: Bool = false) async throws -> WipeSummary {
        try await core.wipe(force: force)
    }

    public func shutdown(timeout: Duration = .seconds(5)) async {
        await core.shutdown(timeoutMs: UInt64(max(0, timeout.milliseconds)))
    }
}

/// Feeds listener calls (made on core threads) into an AsyncStream.
private final class StreamListener: DriverListener, @unchecked Sendable {
    private let continuation: AsyncStream<DriverUpdate>.Continuation
    init(_ continuation: AsyncStream<DriverUpdate>.Continuation) { self.continuation = continuation }
    func onStopChanged(stop: StopRecord) { continuation.yield(.stopChanged(stop)) }
    func onStopListChanged(update: StopListUpdateRecord) { continuation.yield(.stopListChanged(update)) }
    func onOutboxItemChanged(item: OutboxItemRecord) { continuation.yield(.outboxItemChanged(item)) }
    func onUploadProgress(progress: UploadProgressRecord) { continuation.yield(.uploadProgress(progress)) }
}

/// The core's log lines in the unified log (Console.app, `log stream`), under one subsystem.
/// Install once, at app start: `OSLogListener.install(minLevel: .info)`. Lines carry no API key,
/// signature or photo; the core calls this on a thread of its own and never waits for it.
public final class OSLogListener: LogListener, @unchecked Sendable {
    private let log: OSLog
    public init(subsystem: String = "com.upn.driver", category: String = "core") {
        log = OSLog(subsystem: subsystem, category: category)
    }

    public func onLog(record: LogRecord) {
        let type: OSLogType
        switch record.level {
        case .error: type = .error
        case .warn: type = .default
        case .info: type = .info
        case .debug, .trace: type = .debug
        }
        os_log("%{public}@: %{public}@", log: log, type: type, record.target, record.message)
    }

    /// Sets the process's one log listener (a second call throws `CoreError.InvalidInput`).
    public static func install(minLevel: LogLevel = .info) throws {
        try setLogListener(listener: OSLogListener(), minLevel: minLevel)
    }
}

/// Tells the session when the device has a usable network path, and whether it is metered
/// (expensive: cellular or a hotspot; or constrained: Low Data Mode). Only changes are reported:
/// each change to online wakes the core's sync at once, and path updates repeat.
public final class ConnectivityReporter: @unchecked Sendable {
    private let monitor = NWPathMonitor()
    private let queue = DispatchQueue(label: "com.upn.driver.connectivity")
    private let session: DriverSession
    private var last: NetworkStatus?

    public init(session: DriverSession) { self.session = session }

    public func start() {
        monitor.pathUpdateHandler = { [weak self] path in
            guard let self else { return }
            let status = NetworkStatus(
                online: path.status == .satisfied, metered: path.isExpensive || path.isConstrained)
            if self.last != status {  // on `queue` only
                self.last = status
                self.session.setNetwork(status)
            }
        }
        monitor.start(queue: queue)
    }

    public func stop() { monitor.cancel() }
}

/// Drains the outbox in a `BGProcessingTask` (network required). Add `identifier` to
/// `BGTaskSchedulerPermittedIdentifiers` in Info.plist, call `register` before the app finishes
/// launching, and `schedule()` whenever something was captured.
public enum BackgroundDrain {
    public static let identifier = "com.upn.driver.drain"

    /// How long one background run may send for. The core stops cleanly at the deadline; if iOS
    /// expires the task first, whatever was cut short is consistent and goes next time.
    public static var budget: Duration = .seconds(60)

    public static func register(session: @escaping @Sendable () -> DriverSession?) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            guard let task = task as? BGProcessingTask else { return }
            handle(task, session: session())
        }
    }

    public static func schedule(after delay: TimeInterval = 0) {
        let request = BGProcessingTaskRequest(identifier: identifier)
        request.requiresNetworkConnectivity = true
        request.requiresExternalPower = false
        request.earliestBeginDate = Date(timeIntervalSinceNow: delay)
        try? BGTaskScheduler.shared.submit(request)
    }

    private static func handle(_ task: BGProcessingTask, session: DriverSession?) {
        guard let session else {
            task.setTaskCompleted(success: true)
            return
        }
        let done = Once()
        let cancellation = DrainCancellation()
        Task {
            do {
                let summary = try await session.drain(budget: budget, cancellation: cancellation)
                if summary.pending > 0 { schedule(after: 15 * 60) }
                done.run { task.setTaskCompleted(success: summary.flush.ended != .offline) }
            } catch {
                schedule(after: 15 * 60)
                done.run { task.setTaskCompleted(success: false) }
            }
        }
        // iOS wants the task completed at once on expiry: the drain is cancelled (it stops within
        // moments, releasing the outbox, and leaves everything consistent for the next run).
        task.expirationHandler = {
            cancellation.cancel()
            schedule(after: 15 * 60)
            done.run { task.setTaskCompleted(success: false) }
        }
    }
}

/// Runs its closure at most once, from any thread.
private final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var ran = false
    func run(_ body: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        if !ran {
            ran = true
            body()
        }
    }
}

extension Date {
    var epochMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
