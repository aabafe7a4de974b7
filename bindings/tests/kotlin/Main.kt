package com.upn.driver.tests

import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.system.exitProcess

// The Kotlin tests of the generated bindings, run on the JVM by `cargo xtask test`: a tiny
// runner (no JUnit on the machine), one simulator process for the run, each test on its own
// data folder and its own consignments. Prints `N passed, N failed`; exits 1 on any failure.

class TestCase(
    val name: String,
    val body: suspend (Env) -> Unit,
)

/** What every test gets: the simulator and the day's barcodes, one set per test. */
class Env(
    val sim: SimProcess,
    private val barcodes: List<String>,
) {
    private var next = 0

    /** A consignment no other test touches. */
    @Synchronized
    fun freshBarcode(): String = barcodes.getOrNull(next++) ?: error("the simulator has too few consignments for the tests")
}

fun main() {
    val binary = System.getenv("UPN_DRIVER_BIN") ?: error("set UPN_DRIVER_BIN to the upn-driver binary")
    val seed = System.getenv("UPN_TEST_SEED")?.toLong() ?: 7L
    val sim = SimProcess.start(binary, seed)
    println("kotlin tests: simulator at ${sim.endpoint} (seed $seed)")
    var passed = 0
    var failed = 0
    try {
        val barcodes = runBlocking { dayBarcodes(sim) }
        val env = Env(sim, barcodes)
        for (test in TESTS) {
            val started = System.nanoTime()
            val failure =
                try {
                    runBlocking { withTimeout(90_000) { test.body(env) } }
                    null
                } catch (t: Throwable) {
                    t
                }
            val ms = (System.nanoTime() - started) / 1_000_000
            if (failure == null) {
                passed++
                println("test ${test.name} ... ok ($ms ms)")
            } else {
                failed++
                println("test ${test.name} ... FAILED ($ms ms)")
                println("    ${failure::class.qualifiedName}: ${failure.message}")
                failure.stackTrace.take(6).forEach { println("        at $it") }
            }
        }
    } catch (t: Throwable) {
        failed++
        println("kotlin tests: setup failed: ${t::class.qualifiedName}: ${t.message}")
    } finally {
        sim.stop()
    }
    println("$passed passed, $failed failed")
    System.out.flush()
    exitProcess(if (failed == 0) 0 else 1)
}
