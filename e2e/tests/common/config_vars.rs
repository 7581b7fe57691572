//! The environment variables each chirp binary reads, asked of its own clap
//! `Config`.
//!
//! A deployment sets variables by name, and nothing but the service itself
//! notices a misspelt or misplaced one: at start, or never. Each `Config`
//! already knows every variable it reads, which are required, their defaults
//! and how they parse, so the checks take all of that from it (through
//! `CommandFactory`) instead of from a list that would drift from the code.

use std::collections::BTreeMap;

use clap::CommandFactory;

/// The workspace's binaries, each with the clap command of its `Config`.
pub const BINARIES: [Binary; 5] = [
    Binary::new("gateway", gateway::Config::command),
    Binary::new("tweet", tweet::Config::command),
    Binary::new("graph", graph::Config::command),
    Binary::new("timeline", timeline::Config::command),
    Binary::new("fanout", fanout::Config::command),
];

/// Read by the logger (`EnvFilter`) rather than by clap, in every binary.
pub const LOGGER_VARIABLES: [&str; 1] = ["RUST_LOG"];

/// Settings of one process, free to differ between services. Any other
/// variable that several services read must have one value across them: it
/// names something they share (a topic, a Redis key prefix, a peer).
pub const PER_PROCESS: [&str; 5] = [
    "LISTEN_ADDR",
    "METRICS_ADDR",
    "LOG_FORMAT",
    "OTEL_SERVICE_NAME",
    // Each tweet replica's Snowflake worker id: two alike could mint one id twice.
    "NODE_ID",
];

#[derive(Clone, Copy)]
pub struct Binary {
    pub name: &'static str,
    command: fn() -> clap::Command,
}

/// One environment variable a binary reads.
#[derive(Clone)]
pub struct Setting {
    pub env: String,
    long: String,
    /// A list's several default values are joined with commas, as one writes them.
    pub default: Option<String>,
    required: bool,
}

/// What a setting's value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An address the service itself listens on.
    Listener,
    /// Another host the service needs in order to work: a peer
    /// (`TWEET_ADDR`) or a backend (`DATABASE_URL`, `KAFKA_BROKERS`, …).
    Dependency,
    /// Where the service sends its traces, best effort: it works the same
    /// when nobody is listening there.
    TelemetrySink,
    /// Anything else: a number, a name, a secret.
    Plain,
}

impl Setting {
    pub fn is_required(&self) -> bool {
        self.required && self.default.is_none()
    }

    pub fn kind(&self) -> Kind {
        match self.env.as_str() {
            "LISTEN_ADDR" | "METRICS_ADDR" => Kind::Listener,
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Kind::TelemetrySink,
            "KAFKA_BROKERS" | "CQL_NODES" => Kind::Dependency,
            env if env.ends_with("_ADDR") || env.ends_with("_URL") => Kind::Dependency,
            _ => Kind::Plain,
        }
    }

    /// The binary a peer address such as `TWEET_ADDR` must reach.
    pub fn peer(&self) -> Option<String> {
        let peer = self.env.strip_suffix("_ADDR")?.to_lowercase();
        (self.kind() == Kind::Dependency).then_some(peer)
    }
}

impl Binary {
    const fn new(name: &'static str, command: fn() -> clap::Command) -> Self {
        Self { name, command }
    }

    pub fn named(name: &str) -> Option<Self> {
        BINARIES.into_iter().find(|b| b.name == name)
    }

    pub fn settings(self) -> Vec<Setting> {
        (self.command)()
            .get_arguments()
            .filter_map(|arg| {
                let defaults: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                Some(Setting {
                    env: arg.get_env()?.to_string_lossy().into_owned(),
                    long: arg.get_long()?.to_owned(),
                    default: (!defaults.is_empty()).then(|| defaults.join(",")),
                    required: arg.is_required_set(),
                })
            })
            .collect()
    }

    pub fn setting(self, env: &str) -> Option<Setting> {
        self.settings().into_iter().find(|s| s.env == env)
    }

    /// Whether the binary reads `env`, through its `Config` or the logger.
    pub fn reads(self, env: &str) -> bool {
        LOGGER_VARIABLES.contains(&env) || self.settings().iter().any(|s| s.env == env)
    }

    /// The port `env` (`LISTEN_ADDR`, `METRICS_ADDR`) gives, from `values` or
    /// else the default.
    pub fn port(self, env: &str, values: &BTreeMap<String, String>) -> Option<u16> {
        let value = values
            .get(env)
            .cloned()
            .or_else(|| self.setting(env)?.default)?;
        split_host_port(&value).1
    }

    /// Runs `values` through the `Config`'s own parsers (types, ranges, the
    /// secret's length…). Only the values given are checked: whether a
    /// required one is missing is a question for the caller, who may know it
    /// is set from somewhere these values do not show (a Kubernetes Secret).
    /// The values go in as flags, with the variables unbound, so that the
    /// test process's own environment cannot fill in or spoil anything.
    pub fn parse(self, values: &BTreeMap<String, String>) -> Result<(), String> {
        let mut args = vec![self.name.to_owned()];
        for setting in self.settings() {
            if let Some(value) = values.get(&setting.env) {
                args.push(format!("--{}={value}", setting.long));
            }
        }
        (self.command)()
            .mut_args(|arg| arg.env(None::<&'static str>).required(false))
            .try_get_matches_from(args)
            .map(drop)
            .map_err(|error| {
                // clap's message, without the usage and help hints after it
                let text = error.to_string();
                let hint = |line: &&str| line.starts_with("Usage:") || line.starts_with("For more");
                let lines = text.lines().map(str::trim).take_while(|line| !hint(line));
                lines
                    .filter(|line| !line.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
    }
}

/// The settings read by several of `processes` (a name, the binary it runs
/// and its variables) that do not get one value across them, one message
/// each. A setting left out of a process's variables counts at its default.
pub fn disagreements<'a>(
    processes: impl IntoIterator<Item = (&'a str, Binary, &'a BTreeMap<String, String>)>,
) -> Vec<String> {
    // variable -> value -> the processes that get that value
    let mut values: BTreeMap<String, BTreeMap<String, Vec<&str>>> = BTreeMap::new();
    for (name, binary, env) in processes {
        for setting in binary.settings() {
            if PER_PROCESS.contains(&setting.env.as_str()) {
                continue;
            }
            let value = env
                .get(&setting.env)
                .cloned()
                .or(setting.default)
                .unwrap_or_default();
            let by_value = values.entry(setting.env).or_default();
            by_value.entry(value).or_default().push(name);
        }
    }
    values
        .into_iter()
        .filter(|(_, by_value)| by_value.len() > 1)
        .map(|(name, by_value)| {
            format!("{name} differs between the services that read it: {by_value:?}")
        })
        .collect()
}

/// The host and port of every endpoint an address names: `host:port`, a URL
/// such as `postgres://user:password@host:5432/db`, gRPC's `dns:///host:port`,
/// or a comma-separated list.
pub fn endpoints(value: &str) -> Vec<(&str, Option<u16>)> {
    value
        .split(',')
        .map(str::trim)
        .filter(|endpoint| !endpoint.is_empty())
        .map(|endpoint| {
            let authority = match endpoint.split_once("://") {
                // gRPC's `dns:///host:port` has an empty authority before the third slash.
                Some(("dns", rest)) => rest.trim_start_matches('/'),
                Some((_, rest)) => rest.split(['/', '?']).next().unwrap_or(rest),
                None => endpoint,
            };
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
            split_host_port(host_port)
        })
        .collect()
}

/// `host:port`, `[v6]:port`, or a host alone.
pub fn split_host_port(value: &str) -> (&str, Option<u16>) {
    match value.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (value, None),
    }
}

/// Whether a listener on `host` can be reached from outside its container.
pub fn is_every_interface(host: &str) -> bool {
    host == "0.0.0.0" || host == "[::]"
}
