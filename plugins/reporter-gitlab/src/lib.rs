//! `reporter-gitlab`: weft run statuses as GitLab commit statuses
//! (`POST /api/v4/projects/:id/statuses/:sha`).

use forge_common::Forge;
use weft_sdk::PluginInfo;
use weft_sdk::reporter::{Delivery, Event, Reporter};

struct GitLab;

impl Reporter for GitLab {
    fn describe() -> PluginInfo {
        forge_glue::describe(Forge::GitLab, "reporter-gitlab", "GitLab")
    }

    fn report(event: Event) -> Delivery {
        forge_glue::report(Forge::GitLab, &event)
    }
}

weft_sdk::export_reporter!(GitLab);
