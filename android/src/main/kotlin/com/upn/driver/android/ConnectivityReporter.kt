package com.upn.driver.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import com.upn.driver.DriverSession
import com.upn.driver.NetworkStatus

/**
 * Tells the session what network the device has: online when the default network has validated
 * internet access and the app's traffic on it is not blocked (data saver, background
 * restrictions; reported from API 29), and whether it is metered (neither
 * `NET_CAPABILITY_NOT_METERED` nor, from API 30, `NET_CAPABILITY_TEMPORARILY_NOT_METERED`).
 * The session passes both to the core (`metered`: photos obey the data saver). Only changes
 * are reported (capability callbacks repeat on every signal change, and each change to online
 * wakes the core's sync at once).
 *
 * ```
 * val reporter = ConnectivityReporter(context, session).also { it.start() }
 * ...
 * reporter.close()
 * ```
 */
class ConnectivityReporter(
    context: Context,
    private val session: DriverSession,
) : AutoCloseable {
    private val manager =
        checkNotNull(context.getSystemService(ConnectivityManager::class.java)) { "this device has no ConnectivityManager" }

    // The default network's last facts, under this object's lock (callbacks arrive on a
    // ConnectivityManager thread).
    private var capabilities: NetworkCapabilities? = null
    private var blocked = false
    private var last: NetworkStatus? = null

    private val callback =
        object : ConnectivityManager.NetworkCallback() {
            override fun onCapabilitiesChanged(
                network: Network,
                networkCapabilities: NetworkCapabilities,
            ) = update { capabilities = networkCapabilities }

            override fun onBlockedStatusChanged(
                network: Network,
                blocked: Boolean,
            ) = update { this@ConnectivityReporter.blocked = blocked }

            override fun onLost(network: Network) =
                update {
                    capabilities = null
                    blocked = false
                }
        }

    @Synchronized
    private fun update(change: () -> Unit) {
        change()
        val caps = capabilities
        val status =
            if (caps == null) {
                NetworkStatus.OFFLINE
            } else {
                NetworkStatus.of(
                    internet = caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET),
                    validated = caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED),
                    notMetered =
                        caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED) ||
                            caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_TEMPORARILY_NOT_METERED),
                    blocked = blocked,
                )
            }
        if (status == last) return
        last = status
        session.setNetwork(status)
    }

    /** Registers for the default network; the current state is reported at once if there is one. */
    fun start() {
        manager.registerDefaultNetworkCallback(callback)
    }

    override fun close() {
        manager.unregisterNetworkCallback(callback)
    }
}
