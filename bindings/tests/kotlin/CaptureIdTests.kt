package com.upn.driver.tests

import com.upn.driver.DriverSession
import com.upn.driver.core.CoreException
import com.upn.driver.core.PhotoKind
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test

/** Caller-supplied capture ids: a retried call never stores a capture twice. */
class CaptureIdTests {
    @Test
    fun `capture id retry returns the same capture and other bytes conflict`() =
        onSim { env ->
            val barcode = env.freshBarcode()
            withDataDir { dir ->
                val session = DriverSession.open(dir, env.sim.config())
                try {
                    session.importNow()
                    val photoId = UUID.randomUUID()
                    val hex = photoId.toString().replace("-", "")
                    val first = session.addPhoto(barcode, Samples.photoJpeg(11), PhotoKind.GOODS, captureId = photoId.toString())
                    assertEquals(hex, first.id, "a UUID is kept as 32 lowercase hex digits")
                    // The app timed out and tries again: the same capture, nothing new stored.
                    val again = session.addPhoto(barcode, Samples.photoJpeg(11), PhotoKind.GOODS, captureId = hex.uppercase())
                    assertEquals(first.id, again.id)
                    assertEquals(1, session.outbox().size)
                    val conflict =
                        assertFailsWith<CoreException.CaptureIdConflict> {
                            session.addPhoto(barcode, Samples.photoJpeg(12), PhotoKind.GOODS, captureId = hex)
                        }
                    assertEquals(hex, conflict.id)
                    assertTrue(conflict.reason.contains("new capture id"), conflict.reason)
                    val bad =
                        assertFailsWith<CoreException.InvalidInput> {
                            session.addPhoto(barcode, Samples.photoJpeg(13), PhotoKind.GOODS, captureId = "photo-1")
                        }
                    assertEquals("capture_id", bad.field)

                    val signedAt = nowMs()
                    val podId = UUID.randomUUID().toString()
                    val signed = session.sign(barcode, Samples.signaturePng(11), "Jo Patel", signedAt, captureId = podId)
                    val resigned = session.sign(barcode, Samples.signaturePng(11), "Jo Patel", signedAt, captureId = podId)
                    assertEquals(signed.item.id, resigned.item.id)
                    assertEquals(null, resigned.replacedCaptureId, "a retry replaces nothing")
                    assertFailsWith<CoreException.CaptureIdConflict> {
                        session.sign(barcode, Samples.signaturePng(11), "Someone Else", signedAt, captureId = podId)
                    }
                    assertEquals(2, session.outbox().size)
                } finally {
                    session.shutdown()
                    session.close()
                }
            }
        }
}
