package com.upn.driver.tests

import com.upn.driver.DriverSession
import com.upn.driver.core.CoreException
import com.upn.driver.core.DrainCancellation
import com.upn.driver.core.FlushEnd
import com.upn.driver.core.LogLevel
import com.upn.driver.core.LogListener
import com.upn.driver.core.LogRecord
import com.upn.driver.core.OutboxState
import com.upn.driver.core.PhotoKind
import com.upn.driver.core.StopChangeKindRecord
import com.upn.driver.core.StopListUpdateRecord
import com.upn.driver.core.StopPhase
import com.upn.driver.core.setLogListener
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.withTimeout
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import org.junit.jupiter.api.Test

// The live stop list, cancellable drains and the log listener, through the generated bindings
// and the facade.

/** A pure-JVM log listener: keeps what it hears (the Android app uses `LogcatLogListener`). */
class CollectingLogListener : LogListener {
    val records = CopyOnWriteArrayList<LogRecord>()

    override fun onLog(record: LogRecord) {
        records.add(record)
    }
}

/** The process's one log listener, set by the first test that needs it. */
val LOGS: CollectingLogListener by lazy {
    CollectingLogListener().also { setLogListener(it, LogLevel.DEBUG) }
}

private fun StopListUpdateRecord.changeOf(barcode: String) = changes.firstOrNull { it.barcode == barcode }?.kind

class LiveTests {
    @Test
    fun `stop list snapshot then stream hears an import cancel`() =
        onSim { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                val recorder = Recorder()
                val handle = core.subscribe(recorder)
                // The replay ends with the whole list, before subscribe returns.
                val snapshot = recorder.lists.last()
                assertEquals(core.stops(), snapshot.stops)
                assertTrue(snapshot.changes.all { it.kind == StopChangeKindRecord.ADDED })
                env.sim.cancel(barcode)
                core.importNow()
                eventually("the cancellation to reach the listener") {
                    recorder.lists.any { it.changeOf(barcode) == StopChangeKindRecord.CANCELLED }
                }
                val update = recorder.lists.first { it.changeOf(barcode) == StopChangeKindRecord.CANCELLED }
                assertTrue(update.seq > snapshot.seq)
                assertEquals(StopPhase.CANCELLED, update.stops.first { it.barcode == barcode }.phase)
                assertEquals((1..update.stops.size).map { it.toUInt() }, update.stops.map { it.position })
                val seqs = recorder.lists.map { it.seq }
                assertEquals(seqs.sorted().distinct(), seqs, "versions in order, none twice")
                handle.close()
            }
        }

    @Test
    fun `a signed stop is done on device at once in the facade stop list`() =
        onSim { env ->
            val barcode = env.freshBarcode()
            withDataDir { dir ->
                val session = DriverSession.open(dir, env.sim.config())
                try {
                    session.importNow()
                    assertEquals(StopPhase.OPEN, session.stops().first { it.barcode == barcode }.phase)
                    coroutineScope {
                        val done =
                            async {
                                session.stopList.first { u ->
                                    u.stops.any { it.barcode == barcode && it.phase == StopPhase.DONE_ON_DEVICE }
                                }
                            }
                        session.sign(barcode, Samples.signaturePng(21), "Noor Khan")
                        val update = withTimeout(20_000) { done.await() }
                        val open = update.stops.filter { it.phase == StopPhase.OPEN }
                        val signed = update.stops.first { it.barcode == barcode }
                        assertTrue(open.all { it.position < signed.position }, "signed stop below the open ones")
                    }
                    // Offline: nothing was sent, the stop is done on this device anyway.
                    assertEquals(StopPhase.DONE_ON_DEVICE, session.stops().first { it.barcode == barcode }.phase)
                    session.shutdown()
                } finally {
                    session.close()
                }
            }
        }

    @Test
    fun `a cancelled drain stops at once and the next one sends`() =
        onSim { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                core.sign(barcode, Samples.signaturePng(22), "Ivo Marek", nowMs(), null)
                val cancellation = DrainCancellation()
                cancellation.cancel()
                val cancelled = core.drainCancellable(30_000uL, cancellation)
                assertEquals(FlushEnd.CANCELLED, cancelled.flush.ended)
                assertEquals(1u, cancelled.pending)
                assertTrue(cancellation.isCancelled())
                val next = core.drain(30_000uL)
                assertEquals(FlushEnd.DONE, next.flush.ended)
                assertEquals(0u, next.pending)
                assertEquals(1, env.sim.received().podsOf(barcode).size)
            }
        }

    @Test
    fun `a drain whose coroutine is cancelled releases the outbox`() =
        onSim { env ->
            val barcode = env.freshBarcode()
            withDataDir { dir ->
                val session = DriverSession.open(dir, env.sim.config())
                try {
                    session.importNow()
                    session.addPhoto(barcode, Samples.photoJpeg(23, 2400, 1800), PhotoKind.GOODS)
                    session.sign(barcode, Samples.signaturePng(23), "Ola Berg")
                    // Cancelled right away (the coroutine's timeout), wherever the drain was.
                    val started = System.nanoTime()
                    assertFailsWith<kotlinx.coroutines.TimeoutCancellationException> {
                        withTimeout(1) { session.drain(60.seconds) }
                    }
                    assertTrue((System.nanoTime() - started) / 1_000_000 < 1_000, "returned within a second")
                    val next = session.drain(60.seconds)
                    assertEquals(0u, next.pending, "the next drain sent everything: $next")
                    assertTrue(session.outbox().none { it.state == OutboxState.SENDING })
                    assertEquals(1, env.sim.received().podsOf(barcode).size)
                    assertEquals(1, env.sim.received().imagesOf(barcode).size)
                    session.shutdown()
                } finally {
                    session.close()
                }
            }
        }

    @Test
    fun `the log listener hears core lines without the key`() =
        onSim { env ->
            val logs = LOGS
            assertFailsWith<CoreException.InvalidInput> { setLogListener(CollectingLogListener(), LogLevel.INFO) }
            withCore(env.sim.config()) { core ->
                core.importNow()
                eventually("a core line") { logs.records.any { it.target.startsWith("upn") } }
            }
            assertTrue(logs.records.none { it.message.contains(env.sim.apiKey) }, "no line holds the key")
            assertTrue(logs.records.all { it.atMs > 0 && it.message.length <= 2_001 })
        }
}
