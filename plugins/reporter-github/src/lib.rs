//! `reporter-github`: weft run statuses as GitHub commit statuses
//! (`POST /repos/{owner}/{repo}/statuses/{sha}`).

use forge_common::Forge;
use weft_sdk::PluginInfo;
use weft_sdk::reporter::{Delivery, Event, Reporter};

struct GitHub;

impl Reporter for GitHub {
    fn describe() -> PluginInfo {
        forge_glue::describe(Forge::GitHub, "reporter-github", "GitHub")
    }

    fn report(event: Event) -> Delivery {
        forge_glue::report(Forge::GitHub, &event)
    }
}

weft_sdk::export_reporter!(GitHub);
