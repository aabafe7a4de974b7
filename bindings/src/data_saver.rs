//! The data saver through the FFI: the network as the app sees it (`set_network`) and the
//! driver's policy (`set_data_saver` / `data_saver`, kept across restarts). Mirrors
//! `upn_core::domain::data_saver`; the decision is the core's.

use upn_core::domain::data_saver::{DataSaver as Core, NetworkStatus};
use upn_core::driver::DataSaverStatus;

use crate::{guard, CoreError, DriverCore};

/// The driver's data-saver setting. PODs (signatures) always go on any network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DataSaver {
    /// Photos go on any network.
    Off,
    /// Photos go only on an unmetered network (Wi-Fi).
    PhotosOnUnmetered,
    /// On a metered network, photos go while the photo bytes UPN acknowledged on metered
    /// networks today (UTC) plus the next photo stay within `bytes_per_day` (1 MB..=10 GB).
    MeteredPhotoBudget { bytes_per_day: u64 },
}

impl From<Core> for DataSaver {
    fn from(p: Core) -> Self {
        match p {
            Core::Off => DataSaver::Off,
            Core::PhotosOnUnmetered => DataSaver::PhotosOnUnmetered,
            Core::MeteredPhotoBudget { bytes_per_day } => {
                DataSaver::MeteredPhotoBudget { bytes_per_day }
            }
        }
    }
}

impl From<DataSaver> for Core {
    fn from(p: DataSaver) -> Self {
        match p {
            DataSaver::Off => Core::Off,
            DataSaver::PhotosOnUnmetered => Core::PhotosOnUnmetered,
            DataSaver::MeteredPhotoBudget { bytes_per_day } => {
                Core::MeteredPhotoBudget { bytes_per_day }
            }
        }
    }
}

/// The data saver as the settings and sync screens show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DataSaverStatusRecord {
    pub policy: DataSaver,
    /// What the app last reported with `set_network` / `set_online`.
    pub online: bool,
    pub metered: bool,
    /// Photo bytes UPN acknowledged over metered networks today (UTC).
    pub metered_photo_bytes_today: u64,
    /// Queued photos the data saver holds now (their `reason` says why; not failed).
    pub held: u32,
}

impl From<DataSaverStatus> for DataSaverStatusRecord {
    fn from(s: DataSaverStatus) -> Self {
        Self {
            policy: s.policy.into(),
            online: s.network.online,
            metered: s.network.metered,
            metered_photo_bytes_today: s.metered_photo_bytes_today,
            held: s.held,
        }
    }
}

#[uniffi::export]
impl DriverCore {
    /// The app reports the network: `online` (validated, not blocked by a data saver or a
    /// background restriction) and `metered` (mobile data). Photos obey the data saver on a
    /// metered network; going unmetered sends what it held at once. Ignored after `shutdown`.
    pub fn set_network(&self, online: bool, metered: bool) {
        let _ = guard("set_network", || {
            self.driver()?
                .set_network(NetworkStatus { online, metered });
            Ok(())
        });
    }

    /// Sets the data-saver policy (kept across restarts). A budget outside 1 MB..=10 GB is
    /// `InvalidInput` naming `data_saver.bytes_per_day`, and nothing changes.
    pub fn set_data_saver(&self, policy: DataSaver) -> Result<(), CoreError> {
        guard("set_data_saver", || {
            Ok(self.driver()?.set_data_saver(policy.into())?)
        })
    }

    pub fn data_saver(&self) -> Result<DataSaver, CoreError> {
        guard("data_saver", || Ok(self.driver()?.data_saver()?.into()))
    }

    /// The policy, the network, today's metered photo bytes and how many photos are held.
    pub fn data_saver_status(&self) -> Result<DataSaverStatusRecord, CoreError> {
        guard("data_saver_status", || {
            Ok(self.driver()?.data_saver_status()?.into())
        })
    }
}
