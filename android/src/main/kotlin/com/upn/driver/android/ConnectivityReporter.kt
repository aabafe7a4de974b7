package com.upn.driver.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import com.upn.driver.DriverSession

/**
 * Tells the core when the device has a working network: `setOnline(true)` when the default
 * network has validated internet access, `setOnline(false)` when it is lost. Only changes are
 * reported (capability callbacks repeat on every signal change, and each `setOnline(true)` wakes
 * the core's sync at once).
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
    private val manager = context.getSystemService(ConnectivityManager::class.java)
    private var last: Boolean? = null

    private val callback =
        object : ConnectivityManager.NetworkCallback() {
            override fun onCapabilitiesChanged(
                network: Network,
                capabilities: NetworkCapabilities,
            ) {
                report(
                    capabilities.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET) &&
                        capabilities.hasCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED),
                )
            }

            override fun onLost(network: Network) = report(false)
        }

    @Synchronized
    private fun report(online: Boolean) {
        if (last == online) return
        last = online
        session.setOnline(online)
    }

    /** Registers for the default network; the current state is reported at once if there is one. */
    fun start() {
        manager.registerDefaultNetworkCallback(callback)
    }

    override fun close() {
        manager.unregisterNetworkCallback(callback)
    }
}
