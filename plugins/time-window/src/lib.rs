//! `time-window`: a gate that passes inside a weekly time window, in a time zone. Params:
//! `weekdays` (`Mon-Fri`, `Mon,Wed`, `Sat-Sun`; default every day), `hours` (`09:00-17:00`,
//! several as `09:00-12:00,13:00-17:00`, overnight as `22:00-06:00`; default the whole
//! day) and `timezone` (an IANA name such as `Europe/Paris`; default `UTC`). An overnight
//! range belongs to the day it starts on: `Fri` with `22:00-06:00` includes Saturday 03:00.
//!
//! ```yaml
//! - name: office-hours
//!   taskRef: {apiVersion: weft.dev/v1, kind: Gate, name: time-window}
//!   params:
//!     - {name: weekdays, value: Mon-Fri}
//!     - {name: hours, value: "09:00-17:00"}
//!     - {name: timezone, value: Europe/Paris}
//! ```
//!
//! No network: the time zone database is compiled into the component, and the time is the
//! host's wall clock.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use weft_sdk::gate::{Gate, GateContext, GateOutcome};
use weft_sdk::{Param, PluginInfo};

mod window;

use window::Window;

struct TimeWindow;

impl Gate for TimeWindow {
    fn describe() -> PluginInfo {
        PluginInfo::new("time-window", env!("CARGO_PKG_VERSION"))
            .description("Passes inside a weekly time window (weekdays and hours in a time zone)")
            // A gate produces no results: referring to one is a validation error.
            .results_fixed(true)
            .param(
                Param::string("weekdays")
                    .description("Days the window is open: `Mon-Fri`, `Mon,Wed`, `Sat-Sun`")
                    .default("Mon-Sun"),
            )
            .param(
                Param::string("hours")
                    .description("Hours it is open each of those days: `09:00-17:00`, `09:00-12:00,13:00-17:00`, `22:00-06:00`")
                    .default("00:00-24:00"),
            )
            .param(
                Param::string("timezone")
                    .description("The IANA time zone of `hours` and `weekdays` (`Europe/Paris`)")
                    .default("UTC"),
            )
    }

    fn evaluate(ctx: GateContext) -> GateOutcome {
        let window = match Window::parse(
            ctx.param_or("weekdays", "Mon-Sun"),
            ctx.param_or("hours", "00:00-24:00"),
            ctx.param_or("timezone", "UTC"),
        ) {
            Ok(window) => window,
            Err(message) => return GateOutcome::error(message),
        };
        let now: DateTime<Utc> = SystemTime::now().into();
        let verdict = window.judge(now);
        if verdict.open {
            GateOutcome::passed(verdict.message)
        } else {
            GateOutcome::failed(verdict.message)
        }
    }
}

weft_sdk::export_gate!(TimeWindow);
