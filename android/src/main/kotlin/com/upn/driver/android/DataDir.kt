package com.upn.driver.android

import android.content.Context
import java.io.File

/**
 * The core's data folder: `upn-driver` under [Context.getNoBackupFilesDir], app-private and never
 * copied off the device by Auto Backup or device-to-device transfer (a restored copy of the
 * outbox on another phone would send its PODs twice, or hold another driver's signatures).
 *
 * ```
 * val session = DriverSession.open(context.upnDataDir().path, config)
 * ```
 */
fun Context.upnDataDir(): File = File(noBackupFilesDir, "upn-driver")
