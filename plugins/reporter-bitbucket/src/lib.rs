//! `reporter-bitbucket`: weft run statuses as Bitbucket commit statuses
//! (`POST /2.0/repositories/{workspace}/{repo}/commit/{commit}/statuses/build`).

use forge_common::Forge;
use weft_sdk::PluginInfo;
use weft_sdk::reporter::{Delivery, Event, Reporter};

struct Bitbucket;

impl Reporter for Bitbucket {
    fn describe() -> PluginInfo {
        forge_glue::describe(Forge::Bitbucket, "reporter-bitbucket", "Bitbucket Cloud")
    }

    fn report(event: Event) -> Delivery {
        forge_glue::report(Forge::Bitbucket, &event)
    }
}

weft_sdk::export_reporter!(Bitbucket);
