//! Data saver: which photos may go on the network the device has now. The driver picks a
//! [`DataSaver`] policy in the app's settings; the app reports the network ([`NetworkStatus`]).
//! Pure: [`Saver::hold`] decides for one item, [`Saver::holds`] for a list in sending order
//! (a budget is spent by the photos ahead in the list). The flush skips a held photo without
//! claiming it (no attempt, no backoff): it stays `queued` and goes once the network is
//! unmetered, the policy changes, or (a budget) the next UTC day begins.
//!
//! PODs are never held: a data saver never delays a signature.

use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::outbox::CaptureKind;
use super::reason::OutboxReason;
use crate::error::{Error, Result};

/// What the app knows about the device's network. Blocked (data saver of the OS, background
/// restriction) is reported as offline by the facades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct NetworkStatus {
    pub online: bool,
    /// Mobile data or a metered hotspot: photos obey the data saver.
    pub metered: bool,
}

/// The driver's data-saver setting (persisted; default [`DataSaver::Off`]).
/// Serialized as `{"policy": "off" | "photos_on_unmetered" | "metered_photo_budget",
/// "bytes_per_day": n}` (the FFI's and the CLI's field names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum DataSaver {
    /// Photos go on any network.
    #[default]
    Off,
    /// Photos go only on an unmetered network (Wi-Fi).
    PhotosOnUnmetered,
    /// On a metered network, photos go while the photo bytes UPN acknowledged on metered
    /// networks today (UTC) plus the next photo stay within `bytes_per_day`.
    MeteredPhotoBudget { bytes_per_day: u64 },
}

/// The budgets a driver may set: 1 MB to 10 GB (decimal units, as phones show data use).
pub const BUDGET_RANGE: RangeInclusive<u64> = 1_000_000..=10_000_000_000;

impl DataSaver {
    /// The policy, if it may be set: a budget outside [`BUDGET_RANGE`] is bad input.
    pub fn validate(self) -> Result<Self> {
        if let DataSaver::MeteredPhotoBudget { bytes_per_day } = self {
            if !BUDGET_RANGE.contains(&bytes_per_day) {
                return Err(Error::invalid(
                    "data_saver.bytes_per_day",
                    format!(
                        "{bytes_per_day} bytes is out of range; give {}..={} bytes (1 MB to 10 GB)",
                        BUDGET_RANGE.start(),
                        BUDGET_RANGE.end()
                    ),
                ));
            }
        }
        Ok(self)
    }
}

/// Photo bytes UPN acknowledged over metered networks on one UTC day (stored in `sync_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeteredUsage {
    pub day: NaiveDate,
    pub bytes: u64,
}

impl MeteredUsage {
    /// Bytes counted for the UTC day of `now` (another day's count is spent no more).
    pub fn today(usage: Option<MeteredUsage>, now: DateTime<Utc>) -> u64 {
        usage
            .filter(|u| u.day == now.date_naive())
            .map_or(0, |u| u.bytes)
    }

    /// The usage after `bytes` more were acknowledged on a metered network at `now`.
    pub fn add(usage: Option<MeteredUsage>, now: DateTime<Utc>, bytes: u64) -> MeteredUsage {
        MeteredUsage {
            day: now.date_naive(),
            bytes: Self::today(usage, now).saturating_add(bytes),
        }
    }
}

/// Why a photo is held back, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "until", rename_all = "snake_case")]
pub enum Hold {
    /// Until the network is unmetered (or the policy changes).
    Unmetered,
    /// Today's metered budget is spent: until the network is unmetered or `next_day` (the
    /// next UTC midnight) begins.
    BudgetSpent {
        #[serde(with = "chrono::serde::ts_milliseconds")]
        next_day: DateTime<Utc>,
    },
}

impl Hold {
    /// The code the outbox item carries while held.
    pub fn reason(self) -> OutboxReason {
        match self {
            Hold::Unmetered => OutboxReason::HeldUntilUnmetered,
            Hold::BudgetSpent { .. } => OutboxReason::HeldByBudget,
        }
    }

    /// When the hold ends by itself (`None`: only a network or policy change ends it).
    pub fn ends_at(self) -> Option<DateTime<Utc>> {
        match self {
            Hold::Unmetered => None,
            Hold::BudgetSpent { next_day } => Some(next_day),
        }
    }
}

/// Everything the decision needs: the policy, the network, and today's metered photo bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saver {
    pub policy: DataSaver,
    pub metered: bool,
    /// Photo bytes UPN acknowledged on metered networks today (UTC).
    pub spent_today: u64,
    pub now: DateTime<Utc>,
}

impl Saver {
    /// No data saver at work (the policy is off, or the network unmetered).
    pub fn off(now: DateTime<Utc>) -> Self {
        Self {
            policy: DataSaver::Off,
            metered: false,
            spent_today: 0,
            now,
        }
    }

    /// Whether the item (`kind`, `bytes` to upload) is held, with `spent` metered photo bytes
    /// already counted today (acknowledged, plus those ahead of it in this pass).
    pub fn hold(&self, kind: CaptureKind, bytes: u64, spent: u64) -> Option<Hold> {
        if !kind.is_photo() || !self.metered {
            return None;
        }
        match self.policy {
            DataSaver::Off => None,
            DataSaver::PhotosOnUnmetered => Some(Hold::Unmetered),
            DataSaver::MeteredPhotoBudget { bytes_per_day } => {
                let fits = spent
                    .checked_add(bytes)
                    .is_some_and(|total| total <= bytes_per_day);
                (!fits).then_some(Hold::BudgetSpent {
                    next_day: next_utc_day(self.now),
                })
            }
        }
    }

    /// The hold of each item of `items` (kind, bytes), taken in that (sending) order: a photo
    /// let through spends the budget for those after it; one that does not fit does not, so a
    /// smaller one behind it may still go.
    pub fn holds(&self, items: impl IntoIterator<Item = (CaptureKind, u64)>) -> Vec<Option<Hold>> {
        let mut spent = self.spent_today;
        items
            .into_iter()
            .map(|(kind, bytes)| {
                let hold = self.hold(kind, bytes, spent);
                if hold.is_none() && kind.is_photo() && self.metered {
                    spent = spent.saturating_add(bytes);
                }
                hold
            })
            .collect()
    }
}

/// The next UTC midnight after `now` (the end of time stays the end of time).
fn next_utc_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 18, 30, 0).unwrap()
    }

    fn midnight() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap()
    }

    const KINDS: [CaptureKind; 4] = [
        CaptureKind::Pod,
        CaptureKind::Goods,
        CaptureKind::Location,
        CaptureKind::LeaveSafe,
    ];
    const BUDGET: u64 = 2_000_000;

    fn saver(policy: DataSaver, metered: bool, spent_today: u64) -> Saver {
        Saver {
            policy,
            metered,
            spent_today,
            now: now(),
        }
    }

    /// Every policy x network x kind x budget edge (under, exactly at, one over, overflow).
    #[test]
    fn every_policy_network_kind_and_budget_edge() {
        let budget = DataSaver::MeteredPhotoBudget {
            bytes_per_day: BUDGET,
        };
        let spent_cases = [(0, 1), (0, BUDGET), (1, BUDGET), (BUDGET, 0), (BUDGET, 1)];
        for policy in [DataSaver::Off, DataSaver::PhotosOnUnmetered, budget] {
            for metered in [false, true] {
                for kind in KINDS {
                    for (spent, bytes) in spent_cases.into_iter().chain([(u64::MAX, 1)]) {
                        let got = saver(policy, metered, spent).hold(kind, bytes, spent);
                        let expected = match (policy, metered, kind.is_photo()) {
                            (_, _, false) | (_, false, _) | (DataSaver::Off, _, _) => None,
                            (DataSaver::PhotosOnUnmetered, true, true) => Some(Hold::Unmetered),
                            (DataSaver::MeteredPhotoBudget { .. }, true, true) => {
                                let over = spent.checked_add(bytes).is_none_or(|t| t > BUDGET);
                                over.then_some(Hold::BudgetSpent {
                                    next_day: midnight(),
                                })
                            }
                        };
                        assert_eq!(
                            got, expected,
                            "{policy:?} metered={metered} {kind:?} spent={spent} bytes={bytes}"
                        );
                    }
                }
            }
        }
        // The edges spelled out: exactly the budget goes, one byte more does not.
        let s = saver(budget, true, 0);
        assert_eq!(s.hold(CaptureKind::Goods, BUDGET, 0), None);
        assert!(s.hold(CaptureKind::Goods, BUDGET + 1, 0).is_some());
        assert!(s.hold(CaptureKind::Goods, 1, BUDGET).is_some());
        assert_eq!(s.hold(CaptureKind::Pod, u64::MAX, u64::MAX), None);
    }

    #[test]
    fn a_list_spends_the_budget_in_sending_order() {
        let budget = DataSaver::MeteredPhotoBudget {
            bytes_per_day: BUDGET,
        };
        let s = saver(budget, true, 500_000);
        let items = [
            (CaptureKind::Pod, 5_000_000),
            (CaptureKind::Goods, 1_000_000),
            (CaptureKind::Goods, 1_000_000),
            (CaptureKind::LeaveSafe, 500_000),
            (CaptureKind::Location, 1),
        ];
        let spent = Some(Hold::BudgetSpent {
            next_day: midnight(),
        });
        assert_eq!(s.holds(items), vec![None, None, spent, None, spent]);
        // Unmetered: nothing is held and nothing is spent.
        assert_eq!(saver(budget, false, BUDGET).holds(items), vec![None; 5]);
        let wifi_only = saver(DataSaver::PhotosOnUnmetered, true, 0).holds(items);
        assert_eq!(wifi_only[0], None, "a POD always goes");
        assert!(wifi_only[1..].iter().all(|h| *h == Some(Hold::Unmetered)));
    }

    #[test]
    fn the_budget_resets_on_the_next_utc_day() {
        let usage = MeteredUsage::add(None, now(), 700);
        assert_eq!(MeteredUsage::today(Some(usage), now()), 700);
        let usage = MeteredUsage::add(Some(usage), now(), 300);
        assert_eq!(usage.bytes, 1_000);
        assert_eq!(MeteredUsage::today(Some(usage), midnight()), 0);
        let tomorrow = MeteredUsage::add(Some(usage), midnight(), 5);
        assert_eq!((tomorrow.day, tomorrow.bytes), (midnight().date_naive(), 5));
        let last = Utc.with_ymd_and_hms(2026, 12, 1, 23, 59, 59).unwrap();
        assert_eq!(MeteredUsage::today(Some(usage), last), 1_000);
        assert_eq!(Hold::Unmetered.ends_at(), None);
        assert_eq!(next_utc_day(last), midnight());
        assert_eq!(
            next_utc_day(DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn budgets_outside_1_mb_to_10_gb_are_refused_naming_the_field() {
        for ok in [1_000_000, 5_000_000, 10_000_000_000] {
            let p = DataSaver::MeteredPhotoBudget { bytes_per_day: ok };
            assert_eq!(p.validate().unwrap(), p);
        }
        for bad in [0, 999_999, 10_000_000_001, u64::MAX] {
            let p = DataSaver::MeteredPhotoBudget { bytes_per_day: bad };
            let e = p.validate().unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidInput {
                        field: "data_saver.bytes_per_day",
                        ..
                    }
                ),
                "{e}"
            );
        }
        assert!(DataSaver::Off.validate().is_ok());
        assert!(DataSaver::PhotosOnUnmetered.validate().is_ok());
    }

    #[test]
    fn the_policy_is_stored_with_the_ffi_field_names() {
        let p = DataSaver::MeteredPhotoBudget {
            bytes_per_day: 5_000_000,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"policy":"metered_photo_budget","bytes_per_day":5000000}"#
        );
        assert_eq!(serde_json::from_str::<DataSaver>(&json).unwrap(), p);
        assert_eq!(
            serde_json::to_string(&DataSaver::PhotosOnUnmetered).unwrap(),
            r#"{"policy":"photos_on_unmetered"}"#
        );
    }
}
