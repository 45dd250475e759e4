//! `schema`: the JSON Schema of the configuration, for editors.

use std::io::Write;

use super::{EXIT_INVALID, EXIT_OK};

/// Prints the schema `json_schema` gives, or says how to enable the command.
pub(super) fn schema(
    json_schema: Option<fn() -> serde_json::Value>,
    out: &mut dyn Write,
) -> std::io::Result<u8> {
    let Some(json_schema) = json_schema else {
        writeln!(
            out,
            "error: no JSON Schema: derive `schemars::JsonSchema` on the configuration type and \
             build the commands with `Cli::with_json_schema()`"
        )?;
        return Ok(EXIT_INVALID);
    };
    let text = serde_json::to_string_pretty(&json_schema()).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")?;
    Ok(EXIT_OK)
}
