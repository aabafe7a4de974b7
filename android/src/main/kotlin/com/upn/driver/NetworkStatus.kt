package com.upn.driver

/**
 * The device's network as the core and the app see it. Pure JVM: `ConnectivityReporter` on
 * Android builds it from the default network's capabilities with [of].
 */
data class NetworkStatus(
    /** UPN is worth trying: the network has validated internet access and the app may use it. */
    val online: Boolean,
    /** Traffic may cost the driver's company (mobile data); meaningful only when [online]. */
    val metered: Boolean,
) {
    companion object {
        val OFFLINE = NetworkStatus(online = false, metered = false)

        /**
         * From the default network's facts: online only when it has validated internet access
         * and the app's traffic is not blocked (data saver, background restrictions): a blocked
         * network would only make every request time out.
         */
        fun of(
            internet: Boolean,
            validated: Boolean,
            notMetered: Boolean,
            blocked: Boolean,
        ) = NetworkStatus(online = internet && validated && !blocked, metered = !notMetered)
    }
}
