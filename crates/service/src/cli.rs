//! The command line every service binary shares:
//! `zimmer-<service> [serve | migrate | help | <its own commands>]`.

use zimmer_config::Settings;

use crate::Application;

/// Reads the settings of `service`, starts telemetry and runs the command: `serve` (also
/// with none) builds the service with `build` and runs it until stopped, `migrate` applies
/// the migrations, `help` prints `usage`. Any other command goes to `other`, which answers
/// `Ok(false)` for one it does not know (then the command fails, naming `usage`).
pub async fn run_command_line<B, O>(
    service: &'static str,
    usage: &str,
    build: B,
    other: O,
) -> anyhow::Result<()>
where
    B: AsyncFnOnce(Settings) -> anyhow::Result<Application>,
    O: AsyncFnOnce(&str, &Settings) -> anyhow::Result<bool>,
{
    let settings = Settings::from_process_env(service)?;
    let _telemetry = zimmer_telemetry::init(&settings);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => build(settings).await?.run_until_stopped().await?,
        Some("migrate") => crate::migrate(&settings).await?,
        Some("-h" | "--help" | "help") => println!("{usage}"),
        Some(command) => {
            if !other(command, &settings).await? {
                anyhow::bail!("unknown command `{command}`; {usage}");
            }
        }
    }
    Ok(())
}
