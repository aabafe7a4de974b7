package com.upn.driver.tests

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

// How the JUnit 5 tests reach the UPN simulator: one `upn-driver sim` process for the whole JVM
// run, started by the first test that asks for it and stopped at JVM exit; each test gets its own
// data folder (`withDataDir` / `withCore`) and its own consignments (`env.freshBarcode()`).
//
//     @Test
//     fun `a stop signed offline is sent when online`() =
//         onSim { env -> ... }

/** What every test gets: the simulator and a share of the day's consignments. */
class Env internal constructor(
    val sim: SimProcess,
    private val barcodes: List<String>,
) {
    private var next = 0

    /** A consignment no other test touches (shared across the run: each call hands out a new one). */
    @Synchronized
    fun freshBarcode(): String = barcodes.getOrNull(next++) ?: error("the simulator has too few consignments for the tests")
}

/** The run's simulator, started once on first use (tests run one after another in one JVM). */
private object SharedSim {
    private var started: Result<Env>? = null

    @Synchronized
    fun env(): Env {
        // A failed start is remembered: every test then fails with its cause, and no test starts
        // a simulator of its own.
        val result = started ?: Result.runCatching { start() }.also { started = it }
        return result.getOrThrow()
    }

    private fun start(): Env {
        val binary = System.getenv("UPN_DRIVER_BIN") ?: error("set UPN_DRIVER_BIN to the upn-driver binary")
        val seed = System.getenv("UPN_TEST_SEED")?.toLong() ?: 7L
        val sim = SimProcess.start(binary, seed)
        println("kotlin tests: simulator at ${sim.endpoint} (seed $seed)")
        val barcodes = runBlocking { dayBarcodes(sim) }
        return Env(sim, barcodes)
    }
}

/** Runs a test body against the shared simulator, within 90 seconds. */
fun onSim(body: suspend CoroutineScope.(Env) -> Unit): Unit =
    runBlocking {
        val env = SharedSim.env()
        withTimeout(90_000) { body(env) }
    }
