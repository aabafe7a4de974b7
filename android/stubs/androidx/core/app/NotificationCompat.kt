// Compile-only stub of androidx.core (see android/stubs/README.md). Never run, never shipped.
package androidx.core.app

import android.app.Notification
import android.content.Context

class NotificationCompat {
    class Builder(
        context: Context,
        channelId: String,
    ) {
        fun setSmallIcon(icon: Int): Builder = TODO("compile-only stub")

        fun setContentTitle(title: CharSequence?): Builder = TODO("compile-only stub")

        fun setOngoing(ongoing: Boolean): Builder = TODO("compile-only stub")

        fun setOnlyAlertOnce(onlyAlertOnce: Boolean): Builder = TODO("compile-only stub")

        fun setSilent(silent: Boolean): Builder = TODO("compile-only stub")

        fun setForegroundServiceBehavior(behavior: Int): Builder = TODO("compile-only stub")

        fun build(): Notification = TODO("compile-only stub")
    }

    companion object {
        const val FOREGROUND_SERVICE_DEFERRED: Int = 2
    }
}

class NotificationChannelCompat {
    class Builder(
        id: String,
        importance: Int,
    ) {
        fun setName(name: CharSequence?): Builder = TODO("compile-only stub")

        fun build(): NotificationChannelCompat = TODO("compile-only stub")
    }
}

class NotificationManagerCompat {
    fun createNotificationChannel(channel: NotificationChannelCompat): Unit = TODO("compile-only stub")

    companion object {
        const val IMPORTANCE_LOW: Int = 2

        @JvmStatic
        fun from(context: Context): NotificationManagerCompat = TODO("compile-only stub")
    }
}
