//! Command-line arguments (clap). Parsing only; the commands live in `commands/`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "upn-driver",
    version,
    about = "UPN Driver Core from the command line: the simulator, sync, stops, and a demo day",
    after_help = "Exit codes: 0 done; 2 bad input or usage; 3 work remains queued or UPN unreachable; 1 anything else.\n\
                  The API key is read from the UPN_API_KEY environment variable and is never printed."
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); UPN_LOG=filter overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the UPN simulator (prints the endpoint, depot and key to use on its first line).
    Sim(SimArgs),
    /// Import consignments, send the outbox and pull tracking from UPN; each step runs even when
    /// another fails. Exits 0 when everything reached UPN, 3 when work remains or UPN is
    /// unreachable, 1 when UPN refused the key or an action (or storage failed).
    Sync(SyncArgs),
    /// Print the ordered stop list.
    Stops(StopsArgs),
    /// Print one consignment: status, pallets, timeline, POD and images.
    Show(ShowArgs),
    /// Capture a delivery photo (stored durably; sent once the consignment is signed for).
    Photo(PhotoArgs),
    /// Capture the consignee's signature and printed name: the ePOD.
    Sign(SignArgs),
    /// List what is waiting to reach UPN.
    Outbox(OutboxArgs),
    /// Send an item that needs attention again (`--all`: every one), sent at the next sync.
    Retry(RetryArgs),
    /// Give up on an unsent item: it is never sent and its files are removed.
    Discard(DiscardArgs),
    /// A delivery day against the embedded simulator on a free loopback port.
    Demo(DemoArgs),
    /// Match a purchase invoice's charge lines (CSV: barcode, description, amount) to
    /// consignments by exact UPN barcode; near misses are warnings, never matches.
    InvoiceMatch(InvoiceMatchArgs),
    /// Write a consignment's signature and photos, as captured, into a folder.
    Export(ExportArgs),
    /// Run the troubleshooting checks (import, tracking, ePOD, images, invoice, geofence, GPS,
    /// clock) for the device or one consignment: status, evidence and what to do.
    Diagnose(DiagnoseArgs),
    /// Write a zip for support: consignments, outbox history, timelines, diagnostics, recent
    /// log lines, versions. No API key, no signature or photo images, no GPS fixes.
    SupportBundle(SupportBundleArgs),
    /// Write a one-page POD receipt (self-contained HTML) with the tamper-evident POD hash.
    Receipt(ReceiptArgs),
    /// Recompute a POD's tamper-evident hash from the stored files (exit 1 if it does not verify).
    Verify(VerifyArgs),
    /// Show the data saver (no argument), or set it: `off`, `wifi-only` (photos only on an
    /// unmetered network), or `budget <MB>` (photos on a metered network up to MB a day, UTC;
    /// 1..=10000). Signatures always go. Kept in the data folder.
    DataSaver(DataSaverArgs),
    /// Write a sample delivery photo (JPEG, like a phone camera's) to try `photo` with.
    SamplePhoto(SampleArgs),
    /// Write a sample signature (PNG, like a signature pad's) to try `sign` with.
    SampleSignature(SampleArgs),
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// File to write (never over an existing one).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Seed: each seed gives different bytes (so two samples are two captures).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Print the barcodes these options generate, one per line, and exit (nothing listens).
    #[arg(long)]
    pub print_barcodes: bool,
    #[command(flatten)]
    pub sim: SimOptions,
}

/// Simulator options shared by `sim` and `demo`.
#[derive(Debug, Args, Clone)]
pub struct SimOptions {
    /// Seed: the same seed gives the same consignments and the same fault decisions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of consignments to generate.
    #[arg(long, default_value_t = 12)]
    pub consignments: usize,
    /// Fault injection: comma-separated ROUTE:KIND:PROB, e.g. "pod:500:0.3,image:drop:0.1".
    /// ROUTE: consignments|events|pod|image|*; KIND: 500|503|429|drop|lost-response|truncate|garbage|slow.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Limit request and response bodies to this many bytes per second (a mobile uplink).
    #[arg(long)]
    pub throttle: Option<u64>,
    /// Depot code the simulator serves.
    #[arg(long, default_value = "042")]
    pub depot: String,
    /// API key the simulator accepts.
    #[arg(long, default_value = "sim-key-042")]
    pub api_key: String,
    /// Switch off an integration feature, to see how the app reports it (repeatable).
    #[arg(long, value_enum)]
    pub disable: Vec<SimFeature>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimFeature {
    /// The UPN integration for the depot.
    Integration,
    /// The tracking action.
    Tracking,
    /// The image action.
    Images,
}

/// Where the driver's data lives and which UPN to talk to.
#[derive(Debug, Args, Clone)]
pub struct DriverArgs {
    /// The driver's data folder (database and captured files); created if missing, and
    /// refused (exit 2) if it is a file.
    #[arg(long, value_name = "PATH", env = "UPN_DB")]
    pub db: PathBuf,
    /// UPN base URL: https://..., or http:// only to this device (127.0.0.1, ::1, localhost),
    /// e.g. http://127.0.0.1:8080 for the simulator. Redirects and proxies are never used.
    #[arg(long, value_name = "URL", env = "UPN_ENDPOINT")]
    pub endpoint: String,
    /// Depot code (1 to 16 letters or digits). The API key comes from UPN_API_KEY, so it stays
    /// out of shell history.
    #[arg(long, value_name = "CODE", env = "UPN_DEPOT")]
    pub depot: String,
    /// When the app or another upn-driver owns the data folder, wait this long for it before
    /// giving up (exit 1).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::commands::LOCK_WAIT_SECS)]
    pub lock_wait: u64,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// Do not contact UPN: only report what is waiting.
    #[arg(long)]
    pub offline: bool,
    /// The network is metered (mobile data): photos obey the data saver (see `data-saver`).
    #[arg(long)]
    pub metered: bool,
}

#[derive(Debug, Args)]
pub struct DataSaverArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The policy to set; omit it to show the current one.
    #[arg(value_enum)]
    pub mode: Option<DataSaverMode>,
    /// With `budget`: megabytes (1 MB = 1,000,000 bytes) of photos a day on metered networks.
    #[arg(value_name = "MB")]
    pub megabytes: Option<u64>,
    /// Print the data saver as JSON (the FFI's field names).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataSaverMode {
    /// Photos go on any network.
    Off,
    /// Photos only on an unmetered network (Wi-Fi).
    WifiOnly,
    /// Photos on a metered network up to MB a day.
    Budget,
}

/// A GPS fix given on the command line (all three or none).
#[derive(Debug, Args, Clone, Copy)]
pub struct GpsArgs {
    /// Latitude of the fix, WGS 84 degrees.
    #[arg(long, requires_all = ["lon", "accuracy"], allow_hyphen_values = true)]
    pub lat: Option<f64>,
    /// Longitude of the fix, WGS 84 degrees.
    #[arg(long, requires_all = ["lat", "accuracy"], allow_hyphen_values = true)]
    pub lon: Option<f64>,
    /// Accuracy of the fix in metres.
    #[arg(long, requires_all = ["lat", "lon"], allow_hyphen_values = true)]
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhotoKind {
    Goods,
    Location,
    LeaveSafe,
}

#[derive(Debug, Args)]
pub struct PhotoArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The consignment barcode.
    pub barcode: String,
    /// The photo (JPEG or PNG).
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "goods")]
    pub kind: PhotoKind,
    #[command(flatten)]
    pub gps: GpsArgs,
    #[command(flatten)]
    pub capture: CaptureIdArgs,
}

/// What makes a repeated capture command safe to run again.
#[derive(Debug, Args)]
pub struct CaptureIdArgs {
    /// The capture id (32 hex digits or a UUID). Run again with the same id and the same
    /// file, the command reports the capture already stored instead of storing it twice.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// The capture time (RFC 3339, e.g. 2026-11-26T09:30:00Z); default now. A repeated
    /// `sign --id` must give the same time.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The consignment barcode.
    pub barcode: String,
    /// The signature image (PNG or JPEG).
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// The name the consignee printed.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub gps: GpsArgs,
    #[command(flatten)]
    pub capture: CaptureIdArgs,
}

#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Show the photos the data saver would hold on a metered network (each command starts
    /// unmetered: the network is the app's to report).
    #[arg(long)]
    pub metered: bool,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The capture id, as `outbox` lists it.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    /// Retry every item that needs attention (and let a paused outbox try UPN again now).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DiscardArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The capture id, as `outbox` lists it.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct StopsArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The consignment barcode, exactly as on the label.
    pub barcode: String,
    /// Print a JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub sim: SimOptions,
    /// Keep the demo's data in this folder (default: a temporary folder, removed afterwards).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InvoiceMatchArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The invoice: CSV with a header row naming barcode, description and amount.
    pub file: PathBuf,
    /// Print {"matched", "near_misses", "unmatched"} as JSON; `line` is the file's line number.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The consignment barcode.
    pub barcode: String,
    /// The folder to write into (created if missing; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print what was written as a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// Check one consignment (the device as a whole when left out).
    pub barcode: Option<String>,
    /// Also match this purchase invoice (CSV: barcode, description, amount) for the invoice check.
    #[arg(long, value_name = "FILE.csv")]
    pub invoice: Option<PathBuf>,
    /// Print the checks as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SupportBundleArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// Consignments to include (every one with an open problem when left out).
    pub barcodes: Vec<String>,
    /// The zip file to write (never overwritten).
    #[arg(long, value_name = "FILE.zip")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReceiptArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The consignment barcode (it must be signed on this device).
    pub barcode: String,
    /// The HTML file to write (never overwritten).
    #[arg(long, value_name = "FILE.html")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub driver: DriverArgs,
    /// The consignment barcode.
    pub barcode: String,
    /// Print the verification as JSON.
    #[arg(long)]
    pub json: bool,
}
