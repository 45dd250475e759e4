//! `fleet-status`: every live node's report for an etcd key, as a table or JSON.

use std::io::Write;

use super::{EXIT_ETCD, EXIT_NOT_CONVERGED, EXIT_OK};
use crate::etcd::{EtcdClient, EtcdError, EtcdSource, Expected, FleetStatus};

pub(super) fn fleet_status(
    client: Result<EtcdClient, EtcdError>,
    key: &str,
    status_prefix: Option<&str>,
    expected: Expected,
    json: bool,
    out: &mut dyn Write,
) -> std::io::Result<u8> {
    let client = match client {
        Ok(client) => client,
        Err(err) => {
            writeln!(out, "{err}")?;
            return Ok(EXIT_ETCD);
        }
    };
    let prefix = match status_prefix {
        Some(prefix) => prefix.to_string(),
        None => EtcdSource::for_key(client.clone(), key).default_status_prefix(),
    };
    let fleet = match FleetStatus::read(&client, key, &prefix) {
        Ok(fleet) => fleet.expecting(expected),
        Err(err) => {
            writeln!(out, "{err}")?;
            return Ok(EXIT_ETCD);
        }
    };
    if json {
        let text = serde_json::to_string_pretty(&fleet.to_json()).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")?;
    } else {
        writeln!(out, "{fleet}")?;
    }
    Ok(if fleet.converged() {
        EXIT_OK
    } else {
        EXIT_NOT_CONVERGED
    })
}
