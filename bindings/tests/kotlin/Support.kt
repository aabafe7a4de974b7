package com.upn.driver.tests

import com.upn.driver.core.ApiKey
import com.upn.driver.core.CoreConfig
import com.upn.driver.core.DriverCore
import com.upn.driver.core.DriverListener
import com.upn.driver.core.OutboxItemRecord
import com.upn.driver.core.StopListUpdateRecord
import com.upn.driver.core.StopRecord
import com.upn.driver.core.UploadProgressRecord
import kotlinx.coroutines.delay
import java.awt.BasicStroke
import java.awt.Color
import java.awt.RenderingHints
import java.awt.image.BufferedImage
import java.io.BufferedReader
import java.io.ByteArrayOutputStream
import java.io.File
import java.io.InputStreamReader
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import javax.imageio.ImageIO
import kotlin.random.Random

/**
 * The UPN simulator as a child process: `upn-driver sim --listen 127.0.0.1:0 --seed N`, whose
 * first stdout line says where it listens. Stopped by [stop] and by a shutdown hook at JVM exit.
 */
class SimProcess private constructor(
    private val process: Process,
    val endpoint: String,
    val depot: String,
    val apiKey: String,
) {
    private val http = HttpClient.newHttpClient()

    companion object {
        private fun stop(process: Process) {
            process.destroy()
            if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
        }

        private val FIRST_LINE = Regex("""--endpoint (\S+) --depot (\S+)\s+UPN_API_KEY=(\S+)""")

        fun start(binary: String, seed: Long): SimProcess {
            val process =
                ProcessBuilder(binary, "sim", "--listen", "127.0.0.1:0", "--seed", seed.toString(), "--consignments", "60")
                    .redirectError(ProcessBuilder.Redirect.INHERIT)
                    .start()
            // Stopped at JVM exit: the JUnit run shares one simulator across its tests.
            Runtime.getRuntime().addShutdownHook(Thread { stop(process) })
            val out = BufferedReader(InputStreamReader(process.inputStream))
            val first = out.readLine() ?: error("the simulator exited before saying where it listens")
            // Keep draining stdout so the simulator never blocks on a full pipe.
            Thread { out.useLines { lines -> lines.forEach { } } }.apply { isDaemon = true }.start()
            val match = FIRST_LINE.find(first) ?: error("unexpected first line from the simulator: $first")
            val (endpoint, depot, key) = match.destructured
            require(endpoint.startsWith("http://127.0.0.1:")) { "the simulator must be on loopback: $endpoint" }
            return SimProcess(process, endpoint, depot, key)
        }
    }

    fun config(
        endpoint: String = this.endpoint,
        depot: String = this.depot,
        key: String = this.apiKey,
    ) = CoreConfig(endpoint = endpoint, depotCode = depot, apiKey = ApiKey(key))

    private fun call(
        method: String,
        path: String,
        body: String? = null,
    ): String {
        val request =
            HttpRequest
                .newBuilder(URI.create(endpoint + path))
                .method(
                    method,
                    if (body == null) HttpRequest.BodyPublishers.noBody() else HttpRequest.BodyPublishers.ofString(body),
                ).header("content-type", "application/json")
                .build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() in 200..299) { "$method $path answered ${response.statusCode()}" }
        return response.body()
    }

    /** What UPN received (`GET /_sim/received`). */
    fun received(): Received = Received.parse(call("GET", "/_sim/received"))

    fun cancel(barcode: String) {
        call("POST", "/_sim/consignments/$barcode/cancel", """{"reason":"customer cancelled"}""")
    }

    fun setImagesEnabled(enabled: Boolean) {
        call("POST", "/_sim/config", """{"images_enabled":$enabled}""")
    }

    /** Replaces the simulator's fault set (`POST /_sim/faults`); `""` clears it. */
    fun setFaults(spec: String) {
        call("POST", "/_sim/faults", """{"spec":"$spec"}""")
    }

    fun setTrackingEnabled(enabled: Boolean) {
        call("POST", "/_sim/config", """{"tracking_enabled":$enabled}""")
    }

    /** Queues a consignment-level tracking event (`POST /_sim/events`). */
    fun pushEvent(
        barcode: String,
        stage: String,
    ) {
        call("POST", "/_sim/events", """[{"barcode":"$barcode","capture_type":"C","stage":"$stage"}]""")
    }

    fun stop() = stop(process)
}

/** One POD or image as the simulator reports it. */
data class ReceivedItem(
    val barcode: String,
    val seq: Long,
)

/** `/_sim/received`, read with a regex: the JVM has no JSON parser and these shapes are flat. */
data class Received(
    val pods: List<ReceivedItem>,
    val images: List<ReceivedItem>,
) {
    companion object {
        private val OBJECT = Regex("""\{[^{}]*\}""")
        private val BARCODE = Regex(""""barcode"\s*:\s*"([^"]*)"""")
        private val SEQ = Regex(""""seq"\s*:\s*(\d+)""")

        private fun items(section: String) =
            OBJECT.findAll(section).map { m ->
                ReceivedItem(
                    barcode = BARCODE.find(m.value)?.groupValues?.get(1) ?: "",
                    seq = SEQ.find(m.value)?.groupValues?.get(1)?.toLong() ?: -1,
                )
            }.toList()

        fun parse(json: String): Received {
            val pods = json.substringAfter("\"pods\"").substringBefore("\"images\"")
            val images = json.substringAfter("\"images\"").substringBefore("\"rejected\"")
            return Received(items(pods), items(images))
        }
    }

    fun podsOf(barcode: String) = pods.filter { it.barcode == barcode }

    fun imagesOf(barcode: String) = images.filter { it.barcode == barcode }
}

/** Listener that records everything it hears (called on core threads). */
class Recorder : DriverListener {
    val stops = CopyOnWriteArrayList<StopRecord>()
    val items = CopyOnWriteArrayList<OutboxItemRecord>()
    val progress = CopyOnWriteArrayList<UploadProgressRecord>()
    val lists = CopyOnWriteArrayList<StopListUpdateRecord>()

    override fun onStopChanged(stop: StopRecord) {
        stops.add(stop)
    }

    override fun onStopListChanged(update: StopListUpdateRecord) {
        lists.add(update)
    }

    override fun onOutboxItemChanged(item: OutboxItemRecord) {
        items.add(item)
    }

    override fun onUploadProgress(progress: UploadProgressRecord) {
        this.progress.add(progress)
    }
}

/** Sample captures made with the JDK's own encoders. */
object Samples {
    /** A photo-like JPEG: gradient with grain. */
    fun photoJpeg(
        seed: Int,
        width: Int = 800,
        height: Int = 600,
    ): ByteArray {
        val rnd = Random(seed)
        val image = BufferedImage(width, height, BufferedImage.TYPE_INT_RGB)
        for (y in 0 until height) {
            for (x in 0 until width) {
                val grain = rnd.nextInt(-12, 12)
                val r = (60 + 150 * x / width + grain).coerceIn(0, 255)
                val g = (90 + 100 * y / height + grain).coerceIn(0, 255)
                val b = (120 + grain).coerceIn(0, 255)
                image.setRGB(x, y, (r shl 16) or (g shl 8) or b)
            }
        }
        return encode(image, "jpg")
    }

    /** A hand-drawn-looking signature: a dark looping stroke on white, PNG. */
    fun signaturePng(seed: Int): ByteArray {
        val rnd = Random(seed)
        val image = BufferedImage(600, 200, BufferedImage.TYPE_BYTE_GRAY)
        val g = image.createGraphics()
        g.color = Color.WHITE
        g.fillRect(0, 0, 600, 200)
        g.color = Color.BLACK
        g.stroke = BasicStroke(4f)
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON)
        val loops = 3 + rnd.nextInt(4)
        var px = 40
        var py = 100
        for (step in 1..400) {
            val t = step / 400.0
            val x = (40 + t * 520 + 18 * Math.cos(t * loops * 6.28)).toInt()
            val y = (100 + 45 * Math.sin(t * loops * 6.28) * (1 - t * 0.5)).toInt()
            g.drawLine(px, py, x, y)
            px = x
            py = y
        }
        g.dispose()
        return encode(image, "png")
    }

    /** A signature pad nobody signed: white only. */
    fun blankPng(): ByteArray {
        val image = BufferedImage(600, 200, BufferedImage.TYPE_BYTE_GRAY)
        val g = image.createGraphics()
        g.color = Color.WHITE
        g.fillRect(0, 0, 600, 200)
        g.dispose()
        return encode(image, "png")
    }

    private fun encode(
        image: BufferedImage,
        format: String,
    ): ByteArray {
        val out = ByteArrayOutputStream()
        check(ImageIO.write(image, format, out)) { "no $format writer" }
        return out.toByteArray()
    }
}

/** Polls [condition] until it holds, failing after [timeoutMs]. */
suspend fun eventually(
    what: String,
    timeoutMs: Long = 30_000,
    condition: () -> Boolean,
) {
    val until = System.currentTimeMillis() + timeoutMs
    while (!condition()) {
        if (System.currentTimeMillis() > until) throw AssertionError("timed out waiting for $what")
        delay(20)
    }
}

/** A fresh data folder per test, removed afterwards. */
suspend fun <T> withDataDir(block: suspend (String) -> T): T {
    val base = File(System.getenv("UPN_TEST_TMP") ?: System.getProperty("java.io.tmpdir"))
    base.mkdirs()
    val dir = Files.createTempDirectory(base.toPath(), "kt-").toFile()
    try {
        return block(dir.absolutePath)
    } finally {
        dir.deleteRecursively()
    }
}

/** Opens a core on a fresh folder, runs [block], shuts it down and frees it. */
suspend fun <T> withCore(
    config: CoreConfig,
    block: suspend (DriverCore) -> T,
): T =
    withDataDir { dir ->
        val core = DriverCore.open(dir, config)
        try {
            block(core)
        } finally {
            core.shutdown(2_000uL)
            core.close()
        }
    }

fun nowMs() = System.currentTimeMillis()
