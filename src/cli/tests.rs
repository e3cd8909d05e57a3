//! Tests for `cli`, kept apart so the module itself stays short.

use super::*;
use clap::CommandFactory;

#[test]
fn the_command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn decode_flags_parse() {
    let cli = Cli::parse_from(["nms", "decode", "--hex", "--json", "--key-file", "k"]);
    let Command::Decode(args) = cli.command else {
        panic!("expected decode, got {:?}", cli.command);
    };
    assert!(args.hex && args.json);
    assert_eq!(args.key_file, Some(PathBuf::from("k")));
    assert_eq!(cli.color, ColorWhen::Auto);
}

#[test]
fn send_task_and_inspect_flags_parse() {
    let cli = Cli::parse_from([
        "nms",
        "send-task",
        "t.json",
        "--server",
        "http://h:1",
        "--json",
    ]);
    let Command::SendTask(args) = cli.command else {
        panic!("expected send-task, got {:?}", cli.command);
    };
    assert_eq!(
        (args.file, args.api.server, args.api.json),
        ("t.json".into(), "http://h:1".into(), true)
    );
    let cli = Cli::parse_from(["nms", "inspect", "--task", "t.json"]);
    let Command::Inspect(args) = cli.command else {
        panic!("expected inspect, got {:?}", cli.command);
    };
    assert_eq!(args.task, Some(PathBuf::from("t.json")));
    assert!(Cli::try_parse_from(["nms", "inspect", "--task", "t.json", "--watch"]).is_err());
}
