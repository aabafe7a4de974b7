//! `upn-driver outbox`: what is waiting to reach UPN, and why.

use crate::args::OutboxArgs;
use crate::render;
use crate::{exit, CliError};

pub fn run(args: OutboxArgs) -> Result<u8, CliError> {
    let driver = super::open_driver(&args.driver)?;
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
    }
    Ok(exit::OK)
}
