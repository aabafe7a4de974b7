package com.upn.driver.tests

import com.upn.driver.DriverSession
import com.upn.driver.NetworkStatus
import com.upn.driver.core.CoreException
import com.upn.driver.core.DataSaver
import com.upn.driver.core.OutboxReason
import com.upn.driver.core.OutboxState
import com.upn.driver.core.PhotoKind
import com.upn.driver.testing.FakeDriverCore
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds

/** The data saver: photos only on Wi-Fi (or within a metered budget); signatures always go. */
class DataSaverTests {
    @Test
    fun `on metered a photo is held with its reason and goes once the session reports wifi`() =
        onSim { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                val session = DriverSession(core)
                core.setDataSaver(DataSaver.PhotosOnUnmetered)
                assertEquals(DataSaver.PhotosOnUnmetered, core.dataSaver())
                session.setNetwork(NetworkStatus(online = false, metered = true))
                core.addPhoto(barcode, Samples.photoJpeg(31), PhotoKind.GOODS, nowMs(), null)
                core.sign(barcode, Samples.signaturePng(31), "Jo Patel", nowMs(), null)

                val drain = core.drain(60_000u)
                assertEquals(1u, drain.flush.sent, "the POD goes on metered: $drain")
                assertEquals(1u, drain.heldByDataSaver)
                assertEquals(1u, drain.pending, "held is pending, not failed")
                assertEquals(1, env.sim.received().podsOf(barcode).size)
                assertTrue(env.sim.received().imagesOf(barcode).isEmpty())
                val held = core.outbox().single()
                assertEquals(OutboxState.QUEUED, held.state)
                assertEquals(OutboxReason.HeldUntilUnmetered, held.reason)
                assertEquals(0u, held.attempts)
                assertEquals(1u, core.dataSaverStatus().held)

                // Wi-Fi: sent by the core itself, no further call.
                session.setNetwork(NetworkStatus(online = true, metered = false))
                eventually("the held photo reaches UPN", timeoutMs = 120_000) {
                    env.sim.received().imagesOf(barcode).size == 1
                }
                assertEquals(false, core.dataSaverStatus().metered)
            }
        }

    @Test
    fun `a budget out of range is a typed error and changes nothing`() =
        onSim { env ->
            withCore(env.sim.config()) { core ->
                core.setDataSaver(DataSaver.MeteredPhotoBudget(50_000_000uL))
                val e = assertFailsWith<CoreException.InvalidInput> { core.setDataSaver(DataSaver.MeteredPhotoBudget(1uL)) }
                assertEquals("data_saver.bytes_per_day", e.field)
                assertEquals(DataSaver.MeteredPhotoBudget(50_000_000uL), core.dataSaver())
            }
        }

    @Test
    fun `the fake holds photos on metered with wifi only and sends them on wifi`() =
        runBlocking {
            val barcode = "UPN0420000001"
            val fake = FakeDriverCore(stops = listOf(FakeDriverCore.stop(barcode, position = 1u)))
            DriverSession(fake).use { session ->
                fake.setDataSaver(DataSaver.PhotosOnUnmetered)
                session.setNetwork(NetworkStatus(online = true, metered = true))
                assertEquals(true, fake.metered, "the session passes metered to the core")
                session.addPhoto(barcode, ByteArray(100))
                session.sign(barcode, ByteArray(50), "Jo Patel")
                val drain = session.drain(1.seconds)
                assertEquals(1u, drain.flush.sent)
                assertEquals(1u, drain.heldByDataSaver)
                assertEquals(OutboxReason.HeldUntilUnmetered, session.outbox().single().reason)
                session.setOnline(true)
                assertEquals(true, fake.metered, "setOnline keeps metered")
                session.setNetwork(NetworkStatus(online = true, metered = false))
                assertEquals(1u, session.drain(1.seconds).flush.sent)
                assertTrue(session.outbox().isEmpty())
                assertFailsWith<CoreException.InvalidInput> { fake.setDataSaver(DataSaver.MeteredPhotoBudget(0uL)) }
                assertEquals(DataSaver.PhotosOnUnmetered, fake.dataSaver())
            }
        }
}
