//! `reporter-gitea`: weft run statuses as Gitea commit statuses
//! (`POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`).

use forge_common::Forge;
use weft_sdk::PluginInfo;
use weft_sdk::reporter::{Delivery, Event, Reporter};

struct Gitea;

impl Reporter for Gitea {
    fn describe() -> PluginInfo {
        forge_glue::describe(Forge::Gitea, "reporter-gitea", "Gitea/Forgejo")
    }

    fn report(event: Event) -> Delivery {
        forge_glue::report(Forge::Gitea, &event)
    }
}

weft_sdk::export_reporter!(Gitea);
