//! `upn-driver outbox`: what is waiting to reach UPN, and why; `retry` and `discard`.

use crate::args::{DiscardArgs, OutboxArgs, RetryArgs};
use crate::render;
use crate::{exit, CliError};

pub fn run(args: OutboxArgs) -> Result<u8, CliError> {
    let driver = super::open_local(&args.driver)?;
    driver.set_metered(args.metered);
    let items = driver.outbox()?;
    if args.json {
        super::print_json(
            &items
                .iter()
                .map(render::OutboxJson::from)
                .collect::<Vec<_>>(),
        )?;
    } else {
        print!("{}", render::outbox_table(&items, &driver.outbox_stats()?));
        println!("{}", render::data_saver_line(&driver.data_saver_status()?));
    }
    Ok(exit::OK)
}

/// Exit 2 for an unknown id or an item that cannot be retried (sent, discarded, waiting for
/// its signature); 3 when it is being sent right now.
pub fn retry(args: RetryArgs) -> Result<u8, CliError> {
    let driver = super::open_driver(&args.driver)?;
    let items = match (&args.id, args.all) {
        (_, true) => driver.retry_all()?,
        (Some(id), false) => vec![driver.retry(id.trim())?],
        (None, false) => return Err(CliError::bad_input("give a capture id, or --all")),
    };
    for item in &items {
        println!(
            "{} {} {}: {}",
            item.id,
            item.barcode,
            item.kind.outbox_kind(),
            item.state.code()
        );
    }
    println!("{} item(s) will be sent at the next sync", items.len());
    Ok(exit::OK)
}

/// Exit 2 for an unknown id or an item already sent; 3 when it is being sent right now.
pub fn discard(args: DiscardArgs) -> Result<u8, CliError> {
    let driver = super::open_driver(&args.driver)?;
    let item = driver.discard(args.id.trim())?;
    println!(
        "{} {} {}: discarded; it will not be sent",
        item.id,
        item.barcode,
        item.kind.outbox_kind()
    );
    Ok(exit::OK)
}
