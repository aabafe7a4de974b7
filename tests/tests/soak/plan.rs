//! The steps of a delivery day, drawn from a seed. A step names what to do, not to what (a stop
//! by index, a capture by index among the live ones): it is read against the state when it
//! runs, so any sub-list of a plan is still a plan (what shrinking needs), and the plan of
//! `--steps M` is the first M steps of every longer plan of the same seed.

use upn_sim::rng::SplitMix64;

/// A crash: the core is dropped at the `at`-th store point of the step it arms (between two
/// store operations, or between two statements inside one transaction, which then rolls
/// back), then reopened on the same files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    pub at: u32,
    /// Count only the points inside transactions (they are few among all store points).
    pub inside: bool,
}

/// Another writer (a second connection on the database file) takes the write lock at the
/// `at`-th store operation of the step it arms (0: before the step), and holds it to the end
/// of the step; the core waits only a few milliseconds for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub at: u32,
}

/// The tracking inbox commit hits a full disk on its first `failures` attempts (enough of
/// them and the body goes to a spill file); with `everywhere` the whole data folder is full
/// (spill files too, and the space check before a batch is asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxFull {
    pub failures: u8,
    pub everywhere: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Import,
    PullTracking,
    /// `drain(budget)`; a zero budget stops at once.
    Drain {
        budget_ms: u64,
    },
    Flush,
    Sign {
        stop: u32,
        seed: u64,
    },
    Photo {
        stop: u32,
        seed: u64,
        kind: u8,
    },
    /// Discard the n-th live capture (modulo their number).
    Discard {
        nth: u32,
    },
    Retry {
        nth: u32,
    },
    RetryAll,
    /// Connectivity flaps.
    Online(bool),
    /// UPN's fault mix from now on (index into [`FAULT_MIXES`]).
    Faults(u8),
    ImagesEnabled(bool),
    /// At UPN: cancel a consignment, update its instructions, or queue a tracking event.
    Cancel {
        stop: u32,
    },
    Update {
        stop: u32,
    },
    Event {
        stop: u32,
        stage: u8,
        pallet: bool,
        late_min: u32,
    },
    /// The device clock jumps (seconds; negative: backwards).
    Clock {
        secs: i64,
    },
    /// The clock moves to the outbox's next wake-up (or an hour on).
    Wake,
    /// The core is closed and opened again cleanly.
    Reopen,
    /// The next capture or flush hits a full disk writing a capture file.
    DiskFull(Box<Step>),
    /// The inner step runs while another writer holds the database.
    Busy(Busy, Box<Step>),
    /// A tracking pull whose inbox commit hits a full disk.
    InboxFull(InboxFull),
    /// The inner step runs with a crash armed.
    Crash(Crash, Box<Step>),
}

/// UPN fault mixes (the simulator's `ROUTE:KIND:PROB` language).
pub const FAULT_MIXES: [&str; 6] = [
    "",
    "*:500:0.2,*:429:0.1,*:503:0.1",
    "*:lost-response:0.3",
    "*:truncate:0.15,*:garbage:0.15",
    "*:drop:0.2,*:slow:0.2",
    "*:500:0.1,*:lost-response:0.1,*:truncate:0.05,*:garbage:0.05,*:429:0.05,*:drop:0.05,*:slow:0.05,*:503:0.05",
];

pub const STAGES: [&str; 7] = [
    "BOOKED",
    "OUT_FOR_DELIVERY",
    "ARRIVED",
    "UNLOADED",
    "DELIVERED",
    "CARDED",
    "COMPLAINT_RAISED",
];

pub fn plan(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = SplitMix64::for_stream(seed, "soak/plan");
    let mut out = Vec::with_capacity(steps);
    // The day starts with the import, as the app does.
    out.push(Step::Import);
    while out.len() < steps {
        out.push(step(&mut rng));
    }
    out.truncate(steps);
    out
}

fn step(rng: &mut SplitMix64) -> Step {
    let roll = rng.below(100);
    match roll {
        0..=4 => {
            let inside = rng.chance(0.3);
            let at = if inside {
                rng.range(1, 3)
            } else {
                rng.range(1, 12)
            } as u32;
            // Now and then the crash lands in a step that meets a local fault; one inside a
            // transaction, in a step that writes some.
            let inner = if inside {
                writer(rng)
            } else if rng.chance(0.25) {
                fault(rng)
            } else {
                work(rng)
            };
            Step::Crash(Crash { at, inside }, Box::new(inner))
        }
        5..=9 => fault(rng),
        _ => work(rng),
    }
}

/// A step whose store work has multi-statement transactions.
fn writer(rng: &mut SplitMix64) -> Step {
    match rng.below(5) {
        0 => Step::Import,
        1 => Step::PullTracking,
        2 => Step::Flush,
        3 => Step::RetryAll,
        _ => capture(rng),
    }
}

/// A step meeting a local fault: a full disk, a busy database, a full inbox.
fn fault(rng: &mut SplitMix64) -> Step {
    match rng.below(5) {
        0 => Step::DiskFull(Box::new(capture(rng))),
        1 | 2 => {
            let at = rng.below(6) as u32;
            let inner = if rng.chance(0.2) {
                Step::Discard {
                    nth: rng.below(1000) as u32,
                }
            } else {
                writer(rng)
            };
            Step::Busy(Busy { at }, Box::new(inner))
        }
        _ => Step::InboxFull(InboxFull {
            failures: rng.range(1, 6) as u8,
            everywhere: rng.chance(0.2),
        }),
    }
}

/// Anything but a crash or a local fault.
fn work(rng: &mut SplitMix64) -> Step {
    let stop = rng.below(1000) as u32;
    match rng.below(100) {
        0..=7 => Step::Import,
        8..=15 => Step::PullTracking,
        16..=25 => Step::Drain {
            budget_ms: if rng.chance(0.2) { 0 } else { 30_000 },
        },
        26..=31 => Step::Flush,
        32..=47 => capture(rng),
        48..=51 => Step::Discard {
            nth: rng.below(1000) as u32,
        },
        52..=54 => Step::Retry {
            nth: rng.below(1000) as u32,
        },
        55 => Step::RetryAll,
        56..=61 => Step::Online(rng.chance(0.6)),
        62..=64 => Step::Faults(rng.below(FAULT_MIXES.len() as u64) as u8),
        65 => Step::ImagesEnabled(rng.chance(0.6)),
        66..=67 => Step::Cancel { stop },
        68..=69 => Step::Update { stop },
        70..=79 => Step::Event {
            stop,
            stage: rng.below(STAGES.len() as u64) as u8,
            pallet: rng.chance(0.3),
            late_min: if rng.chance(0.2) {
                rng.range(1, 600) as u32
            } else {
                0
            },
        },
        80..=85 => Step::Clock {
            secs: if rng.chance(0.2) {
                -(rng.range(1, 7200) as i64)
            } else {
                rng.range(1, 3600) as i64
            },
        },
        86..=91 => Step::Wake,
        92..=94 => Step::Reopen,
        _ => capture(rng),
    }
}

fn capture(rng: &mut SplitMix64) -> Step {
    let stop = rng.below(1000) as u32;
    let seed = rng.next_u64();
    if rng.chance(0.4) {
        Step::Sign { stop, seed }
    } else {
        Step::Photo {
            stop,
            seed,
            kind: rng.below(3) as u8,
        }
    }
}
