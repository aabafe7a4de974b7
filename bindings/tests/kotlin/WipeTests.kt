package com.upn.driver.tests

import com.upn.driver.DriverSession
import com.upn.driver.core.CoreException
import com.upn.driver.core.DriverCore
import org.junit.jupiter.api.Test
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

/** Sign-out through the facade: `wipe` refuses while captures are unsent, unless forced. */
class WipeTests {
    @Test
    fun `a wipe refuses while a pod is unsent and a forced wipe leaves an empty folder`() =
        onSim { env ->
            val barcode = env.freshBarcode()
            withDataDir { dir ->
                val session = DriverSession.open(dir, env.sim.config())
                try {
                    session.importNow()
                    // Offline (never set online): the POD stays unsent.
                    session.sign(barcode, Samples.signaturePng(31), "Ida Holm")
                    val refused = assertFailsWith<CoreException.UnsentCaptures> { session.wipe() }
                    assertEquals(1u, refused.count)
                    assertEquals(1, session.outbox().size, "a refused wipe changes nothing")
                    assertEquals(1u, session.wipe(force = true).unsentDeleted)
                    assertFailsWith<CoreException.ShutDown> { session.stops() }
                } finally {
                    session.close()
                }
                val left = File(dir).listFiles()?.map { it.name } ?: emptyList()
                assertTrue(left.isEmpty(), "nothing of the core is left: $left")
                // A new open starts empty.
                val again = DriverSession.open(dir, env.sim.config())
                try {
                    assertTrue(again.outbox().isEmpty())
                    again.shutdown()
                } finally {
                    again.close()
                }
            }
        }

    @Test
    fun `a folder opened with another depot is refused and keeps its own stops`() =
        onSim { env ->
            withDataDir { dir ->
                val first = DriverCore.open(dir, env.sim.config())
                first.importNow()
                val stops = first.stops().size
                first.shutdown(2_000uL)
                first.close()
                val refused = assertFailsWith<CoreException.DataFolderBound> { DriverCore.open(dir, env.sim.config(depot = "OTHER1")) }
                assertEquals(env.sim.depot, refused.depot, "the error names the depot the folder belongs to")
                val again = DriverCore.open(dir, env.sim.config())
                try {
                    assertEquals(stops, again.stops().size)
                } finally {
                    again.shutdown(2_000uL)
                    again.close()
                }
            }
        }
}
