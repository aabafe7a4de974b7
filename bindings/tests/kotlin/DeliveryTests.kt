package com.upn.driver.tests

import com.upn.driver.DriverSession
import com.upn.driver.DriverUpdate
import com.upn.driver.core.CaptureKind
import com.upn.driver.core.CheckKind
import com.upn.driver.core.CheckStatusRecord
import com.upn.driver.core.CoreException
import com.upn.driver.core.DriverCore
import com.upn.driver.core.DriverListener
import com.upn.driver.core.FlushEnd
import com.upn.driver.core.GpsFixRecord
import com.upn.driver.core.InvoiceLineRecord
import com.upn.driver.core.InvoiceNearMissReason
import com.upn.driver.core.OutboxItemRecord
import com.upn.driver.core.OutboxState
import com.upn.driver.core.PhotoKind
import com.upn.driver.core.StopRecord
import com.upn.driver.core.SyncBadge
import com.upn.driver.core.UploadProgressRecord
import com.upn.driver.core.coreVersion
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

/** The open consignments of the simulator's day, in stop-list order. */
suspend fun dayBarcodes(sim: SimProcess): List<String> =
    withCore(sim.config()) { core ->
        core.importNow()
        core.stops().filter { it.status == "imported" }.map { it.barcode }
    }

private fun fixNear(stop: StopRecord) = GpsFixRecord(lat = stop.lat, lon = stop.lon, accuracyM = 8.0, fixAtMs = nowMs() - 5_000)

private fun DriverCore.stop(barcode: String) = stops().first { it.barcode == barcode }

val TESTS =
    listOf(
        TestCase("open_refuses_an_empty_depot_as_invalid_input") { env ->
            withDataDir { dir ->
                val e =
                    assertFailsWith<CoreException.InvalidInput> {
                        DriverCore.open(dir, env.sim.config(depot = " "))
                    }
                assertEquals("depot", e.field)
                assertTrue(e.reason.isNotBlank())
            }
        },
        TestCase("import_fills_the_ordered_stop_list") { env ->
            withCore(env.sim.config()) { core ->
                assertTrue(coreVersion().isNotBlank())
                assertFalse(core.isOnline())
                val summary = core.importNow()
                assertEquals(0u, summary.refused)
                assertTrue(summary.added > 0u, "imported $summary")
                val stops = core.stops()
                assertEquals(summary.added.toInt(), stops.size)
                assertEquals((1..stops.size).map { it.toUInt() }, stops.map { it.position })
                assertTrue(stops.all { it.palletCount > 0u && it.weightKg > 0.0 })
                assertTrue(stops.all { it.sync == SyncBadge.NOTHING_CAPTURED })
                val first = stops.first()
                val detail = core.consignment(first.barcode)
                assertEquals(first.barcode, detail.barcode)
                assertEquals(first.palletCount.toInt(), detail.pallets.size)
                assertEquals(null, detail.pod)
                val again = core.importNow()
                assertEquals(0u, again.added)
            }
        },
        TestCase("diagnostics_receipt_verify_and_the_support_bundle") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                val stop = core.stop(barcode)
                core.addPhoto(barcode, Samples.photoJpeg(5), PhotoKind.GOODS, nowMs(), fixNear(stop))
                core.sign(barcode, Samples.signaturePng(5), "Kim Diag", nowMs(), fixNear(stop))
                val before = core.diagnose(barcode, null)
                assertEquals(8, before.checks.size)
                val pod = before.checks.first { it.kind == CheckKind.POD }
                assertEquals(CheckStatusRecord.WARNING, pod.status, "signed, not yet sent: $pod")
                assertTrue(pod.action!!.isNotBlank())
                core.syncNow()
                val after = core.diagnose(barcode, null)
                assertEquals(CheckStatusRecord.OK, after.checks.first { it.kind == CheckKind.POD }.status)
                val v = core.verifyPod(barcode)
                assertTrue(v.intact, "$v")
                assertEquals(64, v.storedSha256!!.length)
                assertEquals(1u, v.photosCovered)
                val html = core.receiptHtml(barcode)
                assertTrue(html.contains(v.storedSha256!!) && html.contains("Kim Diag"))
                val zip = core.supportBundle(listOf(barcode), "kotlin-test")
                assertEquals('P'.code.toByte(), zip[0])
                assertEquals('K'.code.toByte(), zip[1])
                assertFailsWith<CoreException.NotFound> { core.verifyPod("NOPE00000000") }.let { }
            }
        },
        TestCase("an_invoice_matches_exactly_and_flags_near_misses") { env ->
            withCore(env.sim.config()) { core ->
                core.importNow()
                val barcode = core.stops().first().barcode
                val csv = "barcode,description,amount\r\n$barcode,Delivery,41.20\r\n${barcode.lowercase()},Fuel,3.10\r\nNOPE1,Storage,1\r\n"
                val result = core.matchInvoice(csv.toByteArray())
                assertEquals(listOf(InvoiceLineRecord(line = 2uL, barcode = barcode)), result.matched)
                assertEquals(1, result.nearMisses.size)
                assertEquals(InvoiceNearMissReason.CASE, result.nearMisses[0].reason)
                assertEquals(barcode, result.nearMisses[0].candidate)
                assertEquals(4uL, result.unmatched.single().line)
                val e =
                    assertFailsWith<CoreException.InvalidInput> {
                        core.matchInvoice("barcode,amount\nA,1\nB\n".toByteArray())
                    }
                assertTrue(e.reason.contains("line 3"), e.reason)
            }
        },
        TestCase("unknown_barcode_is_not_found_and_malformed_is_invalid_input") { env ->
            withCore(env.sim.config()) { core ->
                core.importNow()
                assertFailsWith<CoreException.NotFound> { core.consignment("UPN0429999999") }
                val e = assertFailsWith<CoreException.InvalidInput> { core.consignment("not a barcode!") }
                assertEquals("barcode", e.field)
            }
        },
        TestCase("whole_delivery_offline_capture_then_online_listener_sees_progress_and_sent") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                val recorder = Recorder()
                val handle = core.subscribe(recorder)
                val stops = core.stops()
                assertEquals(stops.size, recorder.stops.size, "the listener first hears every stop")
                val stop = core.stop(barcode)

                val goods = core.addPhoto(barcode, Samples.photoJpeg(1), PhotoKind.GOODS, nowMs(), fixNear(stop))
                val place = core.addPhoto(barcode, Samples.photoJpeg(2), PhotoKind.LOCATION, nowMs(), fixNear(stop))
                assertEquals(OutboxState.WAITING, goods.state)
                assertEquals(CaptureKind.LOCATION, place.kind)
                // The documents view reads captures back: the original as taken, or a thumbnail.
                assertTrue(Samples.photoJpeg(1).contentEquals(core.captureImage(goods.id, null).bytes))
                val thumb = core.captureImage(goods.id, 320u)
                assertEquals("image/jpeg", thumb.mime)
                assertTrue(thumb.bytes.size < Samples.photoJpeg(1).size)
                assertFailsWith<CoreException.InvalidInput> { core.captureImage(goods.id, 1u) }
                assertEquals(SyncBadge.WAITING_FOR_SIGNATURE, core.stop(barcode).sync)
                val signed = core.sign(barcode, Samples.signaturePng(1), "Jo Patel", nowMs(), fixNear(stop))
                assertEquals(OutboxState.QUEUED, signed.item.state)
                assertEquals(CaptureKind.POD, signed.item.kind)
                assertFalse(signed.staleGps)
                assertEquals(3, core.outbox().size)
                val stats = core.outboxStats()
                assertEquals(2u, stats.waiting)
                assertEquals(1u, stats.queued)
                assertEquals(SyncBadge.QUEUED, core.stop(barcode).sync)

                // Offline: nothing leaves the device.
                delay(300)
                assertTrue(env.sim.received().podsOf(barcode).isEmpty())

                core.setOnline(true)
                assertTrue(core.isOnline())
                eventually("the listener to hear the stop is sent") {
                    recorder.stops.any { it.barcode == barcode && it.sync == SyncBadge.SENT }
                }
                val ids = listOf(goods.id, place.id, signed.item.id)
                for (id in ids) {
                    assertTrue(recorder.items.any { it.id == id && it.state == OutboxState.SENT }, "item $id sent")
                }
                assertTrue(recorder.items.any { it.state == OutboxState.SENDING }, "sending seen")
                val progress = recorder.progress.filter { it.barcode == barcode }
                assertTrue(progress.isNotEmpty(), "upload progress reported")
                assertTrue(progress.any { it.totalBytes > 0u && it.sentBytes == it.totalBytes })

                assertTrue(core.outbox().isEmpty())
                val detail = core.consignment(barcode)
                assertEquals(SyncBadge.SENT, detail.sync)
                val pod = assertNotNull(detail.pod)
                assertEquals("Jo Patel", pod.signedBy)
                assertEquals(OutboxState.SENT, pod.state)
                assertNotNull(pod.upnReference)
                assertNotNull(pod.sentAtMs)
                assertNotNull(pod.gps)
                assertEquals(2, detail.photos.size)
                assertTrue(detail.photos.all { it.state == OutboxState.SENT })

                val received = env.sim.received()
                assertEquals(1, received.podsOf(barcode).size)
                val images = received.imagesOf(barcode)
                assertEquals(2, images.size)
                assertTrue(images.all { it.seq > received.podsOf(barcode).single().seq }, "images after their POD")
                handle.cancel()
                handle.close()
            }
        },
        TestCase("invalid_captures_surface_as_typed_exceptions") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                fun field(e: CoreException.InvalidInput) = e.field
                assertEquals(
                    "signature",
                    field(assertFailsWith { core.sign(barcode, Samples.blankPng(), "Jo Patel", nowMs(), null) }),
                )
                assertEquals(
                    "signed_by",
                    field(assertFailsWith { core.sign(barcode, Samples.signaturePng(2), "   ", nowMs(), null) }),
                )
                assertEquals(
                    "photo",
                    field(assertFailsWith { core.addPhoto(barcode, "not an image".toByteArray(), PhotoKind.GOODS, nowMs(), null) }),
                )
                assertEquals(
                    "captured_at",
                    field(assertFailsWith { core.addPhoto(barcode, Samples.photoJpeg(3), PhotoKind.GOODS, nowMs() + 3_600_000, null) }),
                )
                val badFix = GpsFixRecord(lat = 123.0, lon = 0.0, accuracyM = 5.0, fixAtMs = nowMs())
                assertEquals(
                    "gps.lat",
                    field(assertFailsWith { core.addPhoto(barcode, Samples.photoJpeg(3), PhotoKind.GOODS, nowMs(), badFix) }),
                )
                assertTrue(core.outbox().isEmpty(), "nothing recorded by refused captures")
            }
        },
        TestCase("a_signature_is_replaced_before_sending_and_refused_after") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                val first = core.sign(barcode, Samples.signaturePng(3), "A Person", nowMs(), null)
                val second = core.sign(barcode, Samples.signaturePng(4), "B Person", nowMs(), null)
                assertEquals(first.item.id, second.replacedCaptureId)
                val sync = core.syncNow()
                assertEquals(1u, sync.flush.sent)
                assertEquals(FlushEnd.DONE, sync.flush.ended)
                assertEquals("B Person", core.consignment(barcode).pod?.signedBy)
                assertFailsWith<CoreException.AlreadySigned> {
                    core.sign(barcode, Samples.signaturePng(5), "C Person", nowMs(), null)
                }
                assertEquals(1, env.sim.received().podsOf(barcode).size)
            }
        },
        TestCase("a_cancelled_consignment_refuses_captures") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                env.sim.cancel(barcode)
                val summary = core.importNow()
                assertEquals(1u, summary.cancelled)
                assertEquals("cancelled", core.stop(barcode).status)
                assertEquals("cancelled", core.stops().last().status, "cancelled stops go last")
                assertFailsWith<CoreException.Cancelled> {
                    core.addPhoto(barcode, Samples.photoJpeg(4), PhotoKind.GOODS, nowMs(), null)
                }
            }
        },
        TestCase("unreachable_upn_is_offline_and_a_wrong_key_is_unauthorized") { env ->
            withCore(env.sim.config(endpoint = "http://127.0.0.1:1")) { core ->
                assertFailsWith<CoreException.Offline> { core.importNow() }
                assertFailsWith<CoreException.Offline> { core.syncNow() }
                assertTrue(core.stops().isEmpty())
            }
            withCore(env.sim.config(key = "not-the-key")) { core ->
                assertFailsWith<CoreException.Unauthorized> { core.importNow() }
            }
        },
        TestCase("image_action_disabled_pauses_photos_and_retry_sends_them") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                env.sim.setImagesEnabled(false)
                try {
                    core.sign(barcode, Samples.signaturePng(6), "Sam Lee", nowMs(), null)
                    val photo = core.addPhoto(barcode, Samples.photoJpeg(6), PhotoKind.LEAVE_SAFE, nowMs(), null)
                    val first = core.syncNow()
                    assertEquals(1u, first.flush.sent)
                    assertEquals(0u, first.flush.needsAttention, "an account refusal never strands an item")
                    val held = core.outbox().single()
                    assertEquals(photo.id, held.id)
                    assertEquals(OutboxState.QUEUED, held.state)
                    assertTrue(held.lastError?.contains("image") == true, "reason kept: ${held.lastError}")
                    val paused = core.outboxStats().imagesPausedReason
                    assertTrue(paused?.contains("image") == true, "photos paused, visibly: $paused")
                    assertEquals(null, core.outboxStats().pausedReason, "PODs still go")
                    env.sim.setImagesEnabled(true)
                    assertEquals(OutboxState.QUEUED, core.retry(photo.id).state)
                    assertEquals(1u, core.syncNow().flush.sent)
                    assertEquals(SyncBadge.SENT, core.stop(barcode).sync)
                    assertFailsWith<CoreException.InvalidInput> { core.discard(photo.id) }
                } finally {
                    env.sim.setImagesEnabled(true)
                }
            }
        },
        TestCase("tracking_pull_updates_status_timeline_and_health") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                val recorder = Recorder()
                val handle = core.subscribe(recorder)
                env.sim.pushEvent(barcode, "OUT_FOR_DELIVERY")
                val pulled = core.pullTrackingNow()
                assertTrue(barcode in pulled.changed, "changed: ${pulled.changed}")
                assertEquals("out_for_delivery", core.stop(barcode).status)
                eventually("the listener to hear the new status") {
                    recorder.stops.any { it.barcode == barcode && it.status == "out_for_delivery" }
                }
                val timeline = core.timeline(barcode)
                assertTrue(timeline.consignment.any { it.stage == "OUT_FOR_DELIVERY" && !it.fromDevice && it.captureType == "C" })
                assertEquals(core.consignment(barcode).pallets.size, timeline.pallets.size)
                assertTrue(timeline.pallets.all { p -> p.entries.any { it.stage == "OUT_FOR_DELIVERY" } })
                val health = core.trackingHealth()
                assertNotNull(health.lastSuccessAtMs)
                assertFalse(health.stale)
                assertEquals(null, health.advice)
                assertEquals(0u, health.malformedEvents)
                assertEquals(0u, health.spilledResponses)
                assertFailsWith<CoreException.NotFound> { core.timeline("UPN0429999999") }

                env.sim.setTrackingEnabled(false)
                try {
                    assertFailsWith<CoreException.NotEnabled> { core.pullTrackingNow() }
                    val sync = core.syncNow()
                    assertEquals(null, sync.tracking)
                    assertNotNull(sync.trackingError)
                    assertNotNull(core.trackingHealth().advice)
                    assertNotNull(core.diagnostics().tracking.lastError)
                } finally {
                    env.sim.setTrackingEnabled(true)
                }
                handle.close()
            }
        },
        TestCase("drain_sends_within_its_deadline_and_reports_what_is_left") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                core.addPhoto(barcode, Samples.photoJpeg(7), PhotoKind.GOODS, nowMs(), null)
                val nothingYet = core.drain(10_000uL)
                assertEquals(1u, nothingYet.pending, "a photo waits for its signature")
                assertEquals(0u, nothingYet.flush.sent)
                core.sign(barcode, Samples.signaturePng(7), "Ana Ruiz", nowMs(), null)
                val drained = core.drain(20_000uL)
                assertEquals(2u, drained.flush.sent)
                assertEquals(0u, drained.pending)
                assertEquals(FlushEnd.DONE, drained.flush.ended)
            }
        },
        TestCase("cancelling_or_releasing_the_listener_handle_stops_updates") { env ->
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                val recorder = Recorder()
                val handle = core.subscribe(recorder)
                val dropped = Recorder()
                val droppedHandle = core.subscribe(dropped)
                core.addPhoto(barcode, Samples.photoJpeg(8), PhotoKind.GOODS, nowMs(), null)
                eventually("the photo to be heard") { recorder.items.isNotEmpty() && dropped.items.isNotEmpty() }
                handle.cancel()
                assertFalse(handle.isActive())
                droppedHandle.close() // releasing the handle unsubscribes too
                val heard = recorder.items.size + recorder.stops.size
                val heardByDropped = dropped.items.size + dropped.stops.size
                core.addPhoto(barcode, Samples.photoJpeg(9), PhotoKind.GOODS, nowMs(), null)
                delay(200)
                assertEquals(heard, recorder.items.size + recorder.stops.size)
                assertEquals(heardByDropped, dropped.items.size + dropped.stops.size)
                handle.cancel() // idempotent
                handle.close()
            }
        },
        TestCase("a_listener_that_throws_never_disturbs_delivery") { env ->
            println("    (two Rust panic messages below are expected: the FFI catches the listener's exceptions)")
            val barcode = env.freshBarcode()
            withCore(env.sim.config()) { core ->
                core.importNow()
                // Throws on its first two calls (one Rust panic message each, caught), then counts.
                val calls = java.util.concurrent.atomic.AtomicInteger()
                fun maybeThrow() {
                    if (calls.incrementAndGet() <= 2) throw IllegalStateException("app bug")
                }
                val thrower =
                    object : DriverListener {
                        override fun onStopChanged(stop: StopRecord) = maybeThrow()

                        override fun onOutboxItemChanged(item: OutboxItemRecord) = maybeThrow()

                        override fun onUploadProgress(progress: UploadProgressRecord) = maybeThrow()
                    }
                val bad = core.subscribe(thrower)
                val recorder = Recorder()
                val good = core.subscribe(recorder)
                core.sign(barcode, Samples.signaturePng(10), "Kim Howe", nowMs(), null)
                assertEquals(1u, core.syncNow().flush.sent)
                eventually("the good listener to hear the stop is sent") {
                    recorder.stops.any { it.barcode == barcode && it.sync == SyncBadge.SENT }
                }
                assertTrue(calls.get() > 2, "the throwing listener stayed registered")
                bad.close()
                good.close()
            }
        },
        TestCase("facade_flow_replays_then_streams_updates") { env ->
            val barcode = env.freshBarcode()
            withDataDir { dir ->
                val session = DriverSession.open(dir, env.sim.config())
                try {
                    session.importNow()
                    val stops = session.stops()
                    val replay = session.updates.take(stops.size).toList()
                    assertTrue(replay.all { it is DriverUpdate.StopChanged })
                    coroutineScope {
                        val sent =
                            async {
                                session.updates.first {
                                    it is DriverUpdate.StopChanged && it.stop.barcode == barcode && it.stop.sync == SyncBadge.SENT
                                }
                            }
                        session.addPhoto(barcode, Samples.photoJpeg(11))
                        session.sign(barcode, Samples.signaturePng(11), "Lee Chan")
                        session.setOnline(true)
                        withTimeout(30_000) { sent.await() }
                    }
                    assertEquals(SyncBadge.SENT, session.consignment(barcode).sync)
                    assertEquals(0u, session.outboxStats().queued)
                    session.shutdown()
                } finally {
                    session.close()
                }
            }
        },
        TestCase("after_shutdown_calls_fail_with_shut_down") { env ->
            withDataDir { dir ->
                val core = DriverCore.open(dir, env.sim.config())
                core.importNow()
                core.setOnline(true)
                core.shutdown(1_000uL)
                assertFailsWith<CoreException.ShutDown> { core.stops() }
                assertFailsWith<CoreException.ShutDown> { core.importNow() }
                core.setOnline(true) // ignored, never throws
                assertFalse(core.isOnline())
                core.shutdown(0uL) // idempotent
                core.close()
                // The data outlives the core: a new one on the same folder sees the day.
                val reopened = DriverCore.open(dir, env.sim.config())
                assertTrue(reopened.stops().isNotEmpty())
                reopened.shutdown(1_000uL)
                reopened.close()
            }
        },
    ) + CAPTURE_ID_TESTS
