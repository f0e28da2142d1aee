//! `scimbridge plan CONNECTION`: the operations the next cycle would perform; writes nothing.

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use anyhow::Result;
use scimbridge_engine::PlanStream;
use scimbridge_model::{Operation, PlanTotals, PlannedGroupOperation, PlannedOperation};

use crate::context::DataDir;
use crate::ops::plan::plan_one;
use crate::output::{out, outln, write_json, write_json_fields_after};

#[derive(Debug, clap::Args)]
pub struct Args {
    connection: String,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    let dir = DataDir::open(data_dir, false).await?;
    let connection = dir.connection(&args.connection).await?;
    // Each channel's operations are printed as they are planned: a full read's new users page
    // by page while the read goes on, then the rest. Neither the plan nor its text is held.
    let mut first = true;
    for channel in connection.channels.iter().filter(|c| c.active) {
        let printer = Printer {
            json: args.json,
            printed: Mutex::default(),
        };
        if args.json {
            out!(
                "{}\n  {}: {{\n    \"operations\": [",
                if first { "{" } else { "," },
                serde_json::to_string(&channel.name)?
            );
        } else {
            outln!("channel {}:", channel.name);
        }
        first = false;
        let mut planned = plan_one(&dir, &connection, channel, &printer).await?;
        printer.operations(std::mem::take(&mut planned.plan.operations));
        let printed = printer
            .printed
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        // Held group operations go with the held user operations, after the others.
        planned.plan.held_groups.extend(printed.held_groups);
        if args.json {
            let open = match printed.group_operations {
                0 => printed.operations,
                _ => printed.group_operations,
            };
            out!("{}", if open > 0 { "\n    ]" } else { "]" });
            write_json_fields_after(&planned.plan.after_operations(), 2);
        } else {
            out!("{}", planned.plan.lines());
            let mut totals = printed.totals;
            totals.add(&planned.plan);
            outln!("data store read with {}", planned.read);
            outln!("{totals}");
        }
    }
    if args.json {
        outln!("{}", if first { "{}" } else { "\n}" });
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a channel's operations as they come, counting them: the user operations, then the
/// groups' (in JSON, in their own list).
struct Printer {
    json: bool,
    printed: Mutex<Printed>,
}

#[derive(Default)]
struct Printed {
    /// User operations printed.
    operations: u64,
    /// Group operations printed.
    group_operations: u64,
    /// Group operations the guard holds, printed with the held user operations.
    held_groups: Vec<PlannedGroupOperation>,
    totals: PlanTotals,
}

impl PlanStream for Printer {
    fn operations(&self, operations: Vec<PlannedOperation>) {
        let mut printed = self.printed.lock().unwrap_or_else(PoisonError::into_inner);
        for operation in &operations {
            if self.json {
                out!("{}\n      ", if printed.operations > 0 { "," } else { "" });
                write_json(operation, 6);
            } else if operation.operation != Operation::Refresh {
                outln!("{operation}");
            }
            printed.operations += 1;
            printed.totals.count(operation);
        }
    }

    fn groups(&self, operations: Vec<PlannedGroupOperation>, held: Vec<PlannedGroupOperation>) {
        let mut printed = self.printed.lock().unwrap_or_else(PoisonError::into_inner);
        for operation in &operations {
            if self.json {
                if printed.group_operations == 0 {
                    // The users' list ends and the groups' begins.
                    let users_end = if printed.operations > 0 {
                        "\n    ]"
                    } else {
                        "]"
                    };
                    out!("{users_end},\n    \"group_operations\": [");
                }
                out!(
                    "{}\n      ",
                    if printed.group_operations > 0 {
                        ","
                    } else {
                        ""
                    }
                );
                write_json(operation, 6);
            } else {
                outln!("{operation}");
            }
            printed.group_operations += 1;
            printed.totals.count_group(operation);
        }
        printed.held_groups.extend(held);
    }
}
