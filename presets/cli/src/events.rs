//! `aether events <height>`: the events a committed block's module hooks and the ledger
//! emitted (`hook_failed`, `module_upgraded`, a module's slashing or jailing events), read
//! from a node over `aether_getBlockEvents`.

use std::time::Duration;

use aether_rpc::{AetherApiClient, HookEventView};
use anyhow::Context;
use clap::Args;
use jsonrpsee::http_client::HttpClientBuilder;

#[derive(Args)]
pub(crate) struct EventsArgs {
    /// The block's height.
    pub(crate) height: u64,
    /// Print the node's JSON answer instead of one line per event.
    #[arg(long)]
    pub(crate) json: bool,
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    pub(crate) rpc: String,
}

pub(crate) async fn events(a: EventsArgs) -> anyhow::Result<()> {
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(10)).build(&a.rpc)?;
    let view = client.block_events(a.height).await.with_context(|| format!("events of block {} through {}", a.height, a.rpc))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!(
        "block {} {}: {} hook event{}",
        view.height,
        view.block_hash,
        view.events.len(),
        if view.events.len() == 1 { "" } else { "s" }
    );
    for event in &view.events {
        println!("{}", event_line(event));
    }
    Ok(())
}

/// `<module or emitter> <topic> <data>`: the topic and the data as text when they are
/// printable UTF-8 (`hook_failed` and `module_upgraded` say what happened in words), else hex.
fn event_line(event: &HookEventView) -> String {
    let source = event.module.clone().unwrap_or_else(|| event.emitter.to_string());
    let topic = event.topic.clone().filter(|t| printable(t)).unwrap_or_else(|| format!("0x{}", hex::encode(&event.topic_hex)));
    let data = match std::str::from_utf8(&event.data) {
        Ok(text) if printable(text) && !text.is_empty() => format!("{text:?}"),
        _ => format!("0x{}", hex::encode(&event.data)),
    };
    format!("  {source} {topic} {data}")
}

fn printable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_framework::types::Address;

    #[test]
    fn an_event_line_shows_text_as_text_and_bytes_as_hex() {
        let failed = HookEventView {
            emitter: Address([1; 20]),
            module: Some("spinner".into()),
            topic: Some("hook_failed".into()),
            topic_hex: b"hook_failed".to_vec(),
            data: b"end_block: out of gas".to_vec(),
        };
        assert_eq!(event_line(&failed), r#"  spinner hook_failed "end_block: out of gas""#);
        let binary = HookEventView { module: None, topic: None, topic_hex: vec![0xff], data: vec![3, 0], ..failed };
        assert_eq!(event_line(&binary), format!("  {} 0xff 0x0300", Address([1; 20])));
    }
}
