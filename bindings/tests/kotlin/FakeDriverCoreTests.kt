package com.upn.driver.tests

import com.upn.driver.DriverSession
import com.upn.driver.DriverUpdate
import com.upn.driver.NetworkStatus
import com.upn.driver.core.CoreException
import com.upn.driver.core.OutboxState
import com.upn.driver.core.SyncBadge
import com.upn.driver.testing.FakeDriverCore
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/**
 * The facade over `FakeDriverCore`, as an app developer's unit test would use it: no simulator,
 * no native library, no data folder.
 */
class FakeDriverCoreTests {
    private val first = "UPN0420000001"
    private val second = "UPN0420000002"

    private fun fake() = FakeDriverCore(stops = listOf(FakeDriverCore.stop(first, position = 1u), FakeDriverCore.stop(second, position = 2u)))

    @Test
    fun `a stop signed with the fake is sent on sync and the updates say so`() =
        runBlocking {
            val fake = fake()
            DriverSession(fake).use { session ->
                val replay = session.updates.take(2).toList()
                assertEquals(listOf(first, second), replay.map { (it as DriverUpdate.StopChanged).stop.barcode })

                val photo = session.addPhoto(first, ByteArray(100))
                assertEquals(OutboxState.WAITING, photo.state, "a photo waits for its POD")
                val signed = session.sign(first, ByteArray(50), "Jo Patel")
                assertEquals(OutboxState.QUEUED, signed.item.state)
                assertEquals(SyncBadge.QUEUED, session.stops().first().sync)
                assertEquals(2u, session.outboxStats().queued)
                coroutineScope {
                    // The replay covers a subscription that lands after the send.
                    val sent =
                        async {
                            session.updates.first { it is DriverUpdate.StopChanged && it.stop.barcode == first && it.stop.sync == SyncBadge.SENT }
                        }
                    assertEquals(2u, session.syncNow().flush.sent)
                    withTimeout(5_000) { sent.await() }
                }
                assertTrue(session.outbox().isEmpty())
                assertEquals(SyncBadge.NOTHING_CAPTURED, session.stops()[1].sync, "the other stop is untouched")
                val sign = fake.calls.first { it.method == "sign" }
                assertEquals(listOf(first, "50 bytes", "Jo Patel"), sign.args.take(3), "captured without the signature's bytes")
                assertTrue(fake.methods.containsAll(listOf("subscribe", "addPhoto", "sign", "syncNow")), "calls: ${fake.methods}")
            }
            assertTrue(fake.closed, "closing the session releases the core")
        }

    @Test
    fun `scripted failures and listener events reach the app as from the real core`() =
        runBlocking {
            val fake = fake()
            val session = DriverSession(fake)
            fake.failNext("syncNow", CoreException.Offline("unreachable", null, "no signal"))
            assertFailsWith<CoreException.Offline> { session.syncNow() }
            assertEquals(0u, session.syncNow().flush.sent, "only the next call fails")
            assertFailsWith<CoreException.NotFound> { session.sign("UPN0429999999", ByteArray(1), "Nobody") }

            coroutineScope {
                val moved = async { session.updates.first { it is DriverUpdate.StopChanged && it.stop.status == "out_for_delivery" } }
                // As an import would: the new list (replayed to a subscription that lands later)
                // and the event (heard by one already there).
                val moved2 = FakeDriverCore.stop(second, position = 2u, status = "out_for_delivery")
                fake.stops = listOf(fake.stops[0], moved2)
                fake.emitStopChanged(moved2)
                assertEquals(second, (moved.await() as DriverUpdate.StopChanged).stop.barcode)
            }

            val unscripted = assertFailsWith<AssertionError> { session.diagnostics() }
            assertTrue(unscripted.message!!.contains("onDiagnostics"), "names what to script: ${unscripted.message}")
            session.shutdown()
            assertFailsWith<CoreException.ShutDown> { session.stops() }
            session.close()
        }

    @Test
    fun `the network status reaches the core as online and keeps metered in the facade`() =
        runBlocking {
            val fake = fake()
            val session = DriverSession(fake)
            assertEquals(NetworkStatus.OFFLINE, session.network.value)
            session.setNetwork(NetworkStatus.of(internet = true, validated = true, notMetered = false, blocked = false))
            assertTrue(fake.online)
            assertTrue(session.network.value.metered, "mobile data is metered")
            session.setNetwork(NetworkStatus.of(internet = true, validated = true, notMetered = true, blocked = true))
            assertFalse(fake.online, "a blocked network is no network for the core")
            session.setNetwork(NetworkStatus.of(internet = true, validated = false, notMetered = true, blocked = false))
            assertFalse(fake.online, "an unvalidated network (captive portal) is not online")
            session.setOnline(true)
            assertEquals(NetworkStatus(online = true, metered = false), session.network.value, "setOnline keeps the last metered")
            session.close()
        }
}
