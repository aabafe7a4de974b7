package com.upn.driver.tests

import com.upn.driver.core.FlushEnd
import com.upn.driver.core.SyncOutcome
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull

/** `syncNow()`: the core's one sync policy (each step runs and reports its own outcome). */
class SyncTests {
    @Test
    fun `sync now sends a queued pod while the feed fails`() =
        onSim { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                core.sign(barcode, Samples.signaturePng(9), "Ana Diaz", nowMs(), null)
                env.sim.setFaults("consignments:500:1")
                try {
                    val sync = core.syncNow()
                    assertEquals(SyncOutcome.OFFLINE, sync.outcome, "$sync")
                    assertNull(sync.import)
                    assertNotNull(sync.importError)
                    assertEquals(1u, sync.flush.sent, "$sync")
                    assertEquals(FlushEnd.DONE, sync.flush.ended)
                    assertNull(sync.flushError)
                    assertEquals(0u, sync.pending)
                    assertNotNull(sync.tracking, "$sync")
                    assertEquals(1, env.sim.received().podsOf(barcode).size)
                } finally {
                    env.sim.setFaults("")
                }
                val again = core.syncNow()
                assertNotNull(again.import)
                assertEquals(SyncOutcome.DONE, again.outcome, "$again")
            }
        }
}
