//! `upn-driver show BARCODE`: one consignment in full.

use crate::args::ShowArgs;
use crate::render;
use crate::{exit, CliError};

pub fn run(args: ShowArgs) -> Result<u8, CliError> {
    let driver = super::open_local(&args.driver)?;
    let detail = driver.consignment(&args.barcode)?;
    let timeline = driver.timeline(&args.barcode)?;
    if args.json {
        super::print_json(&render::DetailJson::from(&detail).with_timeline(&timeline))?;
    } else {
        print!("{}", render::detail_text(&detail));
        print!("{}", render::timeline_text(&timeline));
    }
    Ok(exit::OK)
}
