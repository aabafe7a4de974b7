// Compile-only stub of the Android SDK (see android/stubs/README.md). Never run, never shipped.
package android.net

class Network

class NetworkCapabilities {
    fun hasCapability(capability: Int): Boolean = TODO("compile-only stub")

    companion object {
        const val NET_CAPABILITY_NOT_METERED: Int = 11
        const val NET_CAPABILITY_INTERNET: Int = 12
        const val NET_CAPABILITY_VALIDATED: Int = 16

        /** API 30: metered, but the carrier does not count it for now (e.g. unmetered 5G). */
        const val NET_CAPABILITY_TEMPORARILY_NOT_METERED: Int = 25
    }
}

class ConnectivityManager {
    open class NetworkCallback {
        open fun onAvailable(network: Network) {}

        open fun onCapabilitiesChanged(
            network: Network,
            networkCapabilities: NetworkCapabilities,
        ) {}

        /** API 29: the app's traffic on [network] is blocked (data saver, background restrictions). */
        open fun onBlockedStatusChanged(
            network: Network,
            blocked: Boolean,
        ) {}

        open fun onLost(network: Network) {}
    }

    /** API 24. */
    fun registerDefaultNetworkCallback(networkCallback: NetworkCallback): Unit = TODO("compile-only stub")

    fun unregisterNetworkCallback(networkCallback: NetworkCallback): Unit = TODO("compile-only stub")
}
