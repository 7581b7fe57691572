//! Checks `docker-compose.yml` and `.env.example` against the services' own
//! `Config`s, without Docker.
//!
//! The compose file wires five binaries to four backends through environment
//! variables, and nothing else notices a mistake there until a container fails
//! to start, or worse, starts and quietly talks to its own 127.0.0.1. Each
//! service's clap `Config` already knows every variable it reads, which are
//! required, their defaults and how they parse, so these tests hold the
//! deployment files to it and the two cannot drift apart. A failure lists
//! everything wrong at once, naming the service and the variable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use clap::CommandFactory;
use serde::Deserialize;

/// The workspace's binaries, each with the clap command of its `Config`.
const BINARIES: [Binary; 5] = [
    Binary::new("gateway", gateway::Config::command),
    Binary::new("tweet", tweet::Config::command),
    Binary::new("graph", graph::Config::command),
    Binary::new("timeline", timeline::Config::command),
    Binary::new("fanout", fanout::Config::command),
];

/// Read by the logger (`EnvFilter`) rather than by clap, in every binary.
const LOGGER_VARIABLES: [&str; 1] = ["RUST_LOG"];

/// Settings of one process, free to differ between services. Any other
/// variable that several services read must have one value across them: it
/// names something they share (a topic, a Redis key prefix, a peer).
const PER_PROCESS: [&str; 2] = ["LISTEN_ADDR", "LOG_FORMAT"];

/// The only chirp service published to the host: the HTTP edge.
const EDGE: &str = "gateway";

const COMPOSE_FILE: &str = "docker-compose.yml";
const ENV_EXAMPLE: &str = ".env.example";

#[test]
fn compose_runs_every_binary_from_one_image() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    let mut images = BTreeSet::new();
    for service in stack.services.values().filter(|s| s.built) {
        images.insert(service.image.as_deref().unwrap_or("(none)"));
        if service.dockerfile.as_deref() != Some("deploy/Dockerfile") {
            problems.push(format!(
                "service `{}` builds from {}, not deploy/Dockerfile",
                service.name,
                service.dockerfile.as_deref().unwrap_or("(none)")
            ));
        }
        if service.binary.is_none() {
            problems.push(format!(
                "service `{}` runs `{}`, which is not one of the binaries {:?}",
                service.name,
                service.command.as_deref().unwrap_or("(no command)"),
                BINARIES.map(|b| b.name)
            ));
        }
    }
    if images.len() != 1 || images.contains("(none)") {
        problems.push(format!(
            "the chirp services must all name one image, so that compose builds it once; they name {images:?}"
        ));
    }
    for binary in BINARIES {
        if !stack.chirp_services().any(|(_, b)| b.name == binary.name) {
            problems.push(format!("no service runs the `{}` binary", binary.name));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn compose_sets_every_required_setting() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        for setting in binary.settings().iter().filter(|s| s.is_required()) {
            if !service.env.contains_key(&setting.env) {
                problems.push(format!(
                    "service `{}` does not set {}, which `{}` requires (it has no default)",
                    service.name, setting.env, binary.name
                ));
            }
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn compose_sets_only_settings_the_service_reads() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        let settings = binary.settings();
        let reads: Vec<&str> = settings.iter().map(|s| s.env.as_str()).collect();
        for name in service.env.keys() {
            if !reads.contains(&name.as_str()) && !LOGGER_VARIABLES.contains(&name.as_str()) {
                problems.push(format!(
                    "service `{}` sets {name}, which `{}` does not read; it reads {reads:?} and {LOGGER_VARIABLES:?}",
                    service.name, binary.name
                ));
            }
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn compose_values_pass_the_services_own_parsers() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        if let Err(error) = binary.parse(&service.env) {
            problems.push(format!(
                "service `{}` would not start: {error}",
                service.name
            ));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn services_listen_on_every_interface() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        let Some(setting) = binary.setting("LISTEN_ADDR") else {
            continue;
        };
        let value = service.value(&setting).unwrap_or_default();
        let (host, _) = split_host_port(&value);
        if host != "0.0.0.0" && host != "[::]" {
            problems.push(format!(
                "service `{}` listens on {value}; in a container only 0.0.0.0 or [::] can be reached from other containers",
                service.name
            ));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn every_address_names_a_compose_service() {
    let stack = Stack::load();
    let problems = stack
        .addresses()
        .into_iter()
        .filter(|a| !stack.services.contains_key(&a.host))
        .map(|a| {
            let how = if a.defaulted {
                "left at its default"
            } else {
                "set to"
            };
            let hint = match a.host.as_str() {
                "127.0.0.1" | "localhost" => ", and in a container that is the container itself",
                _ => "",
            };
            format!(
                "service `{}`: {} is {how} {}, but `{}` is not a compose service{hint}",
                a.service.name, a.setting, a.value, a.host
            )
        })
        .collect();
    assert_no_problems(COMPOSE_FILE, problems);
}

/// `TWEET_ADDR` must reach a service that runs `tweet`, on the port it listens on.
#[test]
fn peer_addresses_reach_that_peer_on_its_port() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for address in stack.addresses() {
        let Some(peer) = address.setting.strip_suffix("_ADDR").map(str::to_lowercase) else {
            continue;
        };
        let Some(target) = stack.services.get(&address.host) else {
            continue; // reported by every_address_names_a_compose_service
        };
        let runs = target.binary.map(|b| b.name);
        let listens_on = target.listen_port();
        if runs != Some(peer.as_str()) {
            problems.push(format!(
                "service `{}`: {} points at `{}`, which runs {}, not `{peer}`",
                address.service.name,
                address.setting,
                address.host,
                runs.map_or("no chirp binary".to_owned(), |b| format!("`{b}`"))
            ));
        } else if address.port.is_none() || address.port != listens_on {
            problems.push(format!(
                "service `{}`: {} is {}, but `{}` listens on port {}",
                address.service.name,
                address.setting,
                address.value,
                address.host,
                listens_on.map_or("(none)".to_owned(), |p| p.to_string())
            ));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn services_start_after_what_they_use() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for address in stack.addresses() {
        let (service, host) = (address.service, &address.host);
        let Some(target) = stack.services.get(host).filter(|_| *host != service.name) else {
            continue;
        };
        match service.depends_on.get(host).map(String::as_str) {
            None => problems.push(format!(
                "service `{}` uses `{host}` ({}) but does not list it in depends_on",
                service.name, address.setting
            )),
            Some(condition) if !target.built && condition != "service_healthy" => {
                problems.push(format!(
                    "service `{}` waits for backend `{host}` with {condition}; a started backend is not a ready one, use service_healthy",
                    service.name
                ));
            }
            Some(_) => {}
        }
    }
    for service in stack.services.values() {
        for (target, condition) in &service.depends_on {
            match stack.services.get(target) {
                None => problems.push(format!(
                    "service `{}` depends on `{target}`, which is not a compose service",
                    service.name
                )),
                Some(t) if condition == "service_healthy" && !t.has_healthcheck => {
                    problems.push(format!(
                        "service `{}` waits for `{target}` to be healthy, but `{target}` has no healthcheck",
                        service.name
                    ));
                }
                Some(_) => {}
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn shared_settings_agree_across_services() {
    let stack = Stack::load();
    // variable -> value -> the services that get that value
    let mut values: BTreeMap<String, BTreeMap<String, Vec<&str>>> = BTreeMap::new();
    for (service, binary) in stack.chirp_services() {
        for setting in binary.settings() {
            if PER_PROCESS.contains(&setting.env.as_str()) {
                continue;
            }
            let value = service.value(&setting).unwrap_or_default();
            let by_value = values.entry(setting.env).or_default();
            by_value.entry(value).or_default().push(&service.name);
        }
    }
    let problems = values
        .into_iter()
        .filter(|(_, by_value)| by_value.len() > 1)
        .map(|(name, by_value)| {
            format!("{name} differs between the services that read it: {by_value:?}")
        })
        .collect();
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn only_the_gateway_is_published() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        if binary.name == EDGE {
            let port = service.listen_port();
            if !port.is_some_and(|port| service.published.contains(&port)) {
                problems.push(format!(
                    "service `{}` listens on port {} but publishes {:?}",
                    service.name,
                    port.map_or("(none)".to_owned(), |p| p.to_string()),
                    service.published
                ));
            }
        } else if !service.published.is_empty() {
            problems.push(format!(
                "service `{}` publishes {:?}; clients reach the internal services through `{EDGE}` only",
                service.name, service.published
            ));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn every_backend_has_a_healthcheck() {
    let stack = Stack::load();
    let problems = stack
        .services
        .values()
        .filter(|s| !s.built && !s.has_healthcheck)
        .map(|s| {
            format!(
                "backend `{}` has no healthcheck, so nothing can wait until it is ready",
                s.name
            )
        })
        .collect();
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn env_example_lists_every_setting_with_its_default() {
    let example = EnvExample::load();
    let mut problems = example.problems;
    for name in example.sections.keys() {
        if !BINARIES.iter().any(|b| b.name == name) {
            problems.push(format!("section [{name}] is not one of the binaries"));
        }
    }
    for binary in BINARIES {
        let name = binary.name;
        let Some(section) = example.sections.get(name) else {
            problems.push(format!("there is no section [{name}]"));
            continue;
        };
        let settings = binary.settings();
        for setting in &settings {
            match (section.get(&setting.env), &setting.default) {
                (None, _) => problems.push(format!("[{name}] does not list {}", setting.env)),
                (Some(listed), Some(default)) if listed != default => problems.push(format!(
                    "[{name}] gives {}={listed}, but the default is {default}",
                    setting.env
                )),
                _ => {}
            }
        }
        for variable in section.keys() {
            if !settings.iter().any(|s| &s.env == variable) {
                problems.push(format!(
                    "[{name}] lists {variable}, which `{name}` does not read"
                ));
            }
        }
        if let Err(error) = binary.parse(section) {
            problems.push(format!("[{name}] would not start `{name}`: {error}"));
        }
    }
    assert_no_problems(ENV_EXAMPLE, problems);
}

fn assert_no_problems(file: &str, problems: Vec<String>) {
    if !problems.is_empty() {
        let mut message = format!("{file} is wrong in {} way(s):", problems.len());
        for problem in problems {
            let _ = write!(message, "\n  - {problem}");
        }
        panic!("{message}");
    }
}

fn read_repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ----------------------------------------------------------------- the Configs

#[derive(Clone, Copy)]
struct Binary {
    name: &'static str,
    command: fn() -> clap::Command,
}

/// One environment variable a `Config` reads.
struct Setting {
    env: String,
    long: String,
    /// A list's several default values are joined with commas, as one writes them.
    default: Option<String>,
    required: bool,
}

impl Setting {
    fn is_required(&self) -> bool {
        self.required && self.default.is_none()
    }
}

impl Binary {
    const fn new(name: &'static str, command: fn() -> clap::Command) -> Self {
        Self { name, command }
    }

    fn settings(self) -> Vec<Setting> {
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

    fn setting(self, env: &str) -> Option<Setting> {
        self.settings().into_iter().find(|s| s.env == env)
    }

    /// Runs `env` through the `Config`'s own parsers (types, ranges, the
    /// secret's length…). The values go in as flags, with the variables
    /// unbound, so that the test process's own environment cannot fill in
    /// or spoil anything.
    fn parse(self, env: &BTreeMap<String, String>) -> Result<(), String> {
        let mut args = vec![self.name.to_owned()];
        for setting in self.settings() {
            if let Some(value) = env.get(&setting.env) {
                args.push(format!("--{}={value}", setting.long));
            }
        }
        (self.command)()
            .mut_args(|arg| arg.env(None::<&'static str>))
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

/// Settings that name other hosts: peers (`TWEET_ADDR`) and backends
/// (`DATABASE_URL`, `KAFKA_BROKERS`, …). `LISTEN_ADDR` is the service's own.
fn is_address(env: &str) -> bool {
    (env.ends_with("_ADDR") && env != "LISTEN_ADDR")
        || env.ends_with("_URL")
        || env == "KAFKA_BROKERS"
        || env == "CQL_NODES"
}

/// The host and port of every endpoint an address names: `host:port`, a URL
/// such as `postgres://user:password@host:5432/db`, or a comma-separated list.
fn endpoints(value: &str) -> Vec<(&str, Option<u16>)> {
    value
        .split(',')
        .map(str::trim)
        .filter(|endpoint| !endpoint.is_empty())
        .map(|endpoint| {
            let authority = match endpoint.split_once("://") {
                Some((_, rest)) => rest.split(['/', '?']).next().unwrap_or(rest),
                None => endpoint,
            };
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
            split_host_port(host_port)
        })
        .collect()
}

/// `host:port`, `[v6]:port`, or a host alone.
fn split_host_port(value: &str) -> (&str, Option<u16>) {
    match value.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (value, None),
    }
}

// ----------------------------------------------------------------- the compose file

/// The compose file, reduced to what the checks need.
struct Stack {
    services: BTreeMap<String, Service>,
}

struct Service {
    name: String,
    /// Built from this repository rather than pulled: a chirp service.
    built: bool,
    dockerfile: Option<String>,
    image: Option<String>,
    /// The first word of `command`: the program the container runs.
    command: Option<String>,
    /// The chirp binary the service runs, if `command` names one.
    binary: Option<Binary>,
    /// `environment`, with `${VAR:-default}` resolved to the default, as
    /// `docker compose up` does when nothing sets `VAR`.
    env: BTreeMap<String, String>,
    /// Container ports published to the host.
    published: Vec<u16>,
    /// `depends_on`: service name to condition.
    depends_on: BTreeMap<String, String>,
    has_healthcheck: bool,
}

/// One endpoint that an address setting of a chirp service names.
struct Address<'a> {
    service: &'a Service,
    setting: String,
    /// The whole value, as the service gets it.
    value: String,
    /// Compose leaves the setting at the `Config`'s default (127.0.0.1…).
    defaulted: bool,
    host: String,
    port: Option<u16>,
}

impl Stack {
    fn load() -> Self {
        let text = read_repo_file(COMPOSE_FILE);
        let mut value: serde_yaml::Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{COMPOSE_FILE} is not YAML: {e}"));
        value
            .apply_merge()
            .unwrap_or_else(|e| panic!("{COMPOSE_FILE}: a `<<` merge is wrong: {e}"));
        let file: ComposeFile = serde_yaml::from_value(value)
            .unwrap_or_else(|e| panic!("{COMPOSE_FILE} has an unexpected shape: {e}"));
        let services = file
            .services
            .into_iter()
            .map(|(name, raw)| {
                let service = Service::new(&name, raw)
                    .unwrap_or_else(|e| panic!("{COMPOSE_FILE}: service `{name}`: {e}"));
                (name, service)
            })
            .collect();
        Self { services }
    }

    fn chirp_services(&self) -> impl Iterator<Item = (&Service, Binary)> {
        self.services.values().filter_map(|s| Some((s, s.binary?)))
    }

    fn addresses(&self) -> Vec<Address<'_>> {
        let mut addresses = Vec::new();
        for (service, binary) in self.chirp_services() {
            for setting in binary.settings().into_iter().filter(|s| is_address(&s.env)) {
                let Some(value) = service.value(&setting) else {
                    continue;
                };
                for (host, port) in endpoints(&value) {
                    addresses.push(Address {
                        service,
                        setting: setting.env.clone(),
                        value: value.clone(),
                        defaulted: !service.env.contains_key(&setting.env),
                        host: host.to_owned(),
                        port,
                    });
                }
            }
        }
        addresses
    }
}

impl Service {
    fn new(name: &str, raw: RawService) -> Result<Self, String> {
        let built = raw.build.is_some();
        let command = raw.command.as_ref().map(|c| c.first_word().to_owned());
        let binary = BINARIES
            .into_iter()
            .find(|b| built && command.as_deref() == Some(b.name));
        let published = raw.ports.into_iter().map(RawPort::container_port);
        Ok(Self {
            name: name.to_owned(),
            built,
            dockerfile: raw.build.map(RawBuild::into_dockerfile),
            image: raw.image,
            command,
            binary,
            env: raw.environment.resolve()?,
            published: published.collect::<Result<_, _>>()?,
            depends_on: raw.depends_on.into_conditions(),
            has_healthcheck: raw
                .healthcheck
                .as_ref()
                .is_some_and(RawHealthcheck::is_enabled),
        })
    }

    /// What the service gets for `setting`: the compose value, else the default.
    fn value(&self, setting: &Setting) -> Option<String> {
        let value = self.env.get(&setting.env);
        value.cloned().or_else(|| setting.default.clone())
    }

    /// The port a chirp service listens on, from its `LISTEN_ADDR`.
    fn listen_port(&self) -> Option<u16> {
        let setting = self.binary?.setting("LISTEN_ADDR")?;
        split_host_port(&self.value(&setting)?).1
    }
}

#[derive(Deserialize)]
struct ComposeFile {
    services: BTreeMap<String, RawService>,
}

#[derive(Deserialize)]
struct RawService {
    image: Option<String>,
    build: Option<RawBuild>,
    command: Option<StringOrList>,
    #[serde(default)]
    environment: RawEnvironment,
    #[serde(default)]
    ports: Vec<RawPort>,
    #[serde(default)]
    depends_on: RawDependsOn,
    healthcheck: Option<RawHealthcheck>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBuild {
    Full { dockerfile: Option<String> },
    Context(serde::de::IgnoredAny),
}

impl RawBuild {
    fn into_dockerfile(self) -> String {
        match self {
            Self::Full {
                dockerfile: Some(dockerfile),
            } => dockerfile,
            _ => "Dockerfile".to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn first_word(&self) -> &str {
        match self {
            Self::One(line) => line.split_whitespace().next(),
            Self::Many(words) => words.first().map(String::as_str),
        }
        .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEnvironment {
    Map(BTreeMap<String, Option<serde_yaml::Value>>),
    List(Vec<String>),
}

impl Default for RawEnvironment {
    fn default() -> Self {
        Self::Map(BTreeMap::new())
    }
}

impl RawEnvironment {
    fn resolve(self) -> Result<BTreeMap<String, String>, String> {
        let pairs: Vec<(String, Option<String>)> = match self {
            Self::Map(map) => map
                .into_iter()
                .map(|(name, value)| {
                    let value = match value {
                        None | Some(serde_yaml::Value::Null) => None,
                        Some(serde_yaml::Value::String(s)) => Some(s),
                        Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
                        Some(serde_yaml::Value::Bool(b)) => Some(b.to_string()),
                        Some(other) => return Err(format!("{name} is not a scalar: {other:?}")),
                    };
                    Ok((name, value))
                })
                .collect::<Result<_, _>>()?,
            Self::List(lines) => lines
                .into_iter()
                .map(|line| match line.split_once('=') {
                    Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                    None => (line, None),
                })
                .collect(),
        };
        pairs
            .into_iter()
            .map(|(name, value)| {
                let value = value.ok_or_else(|| {
                    format!("{name} has no value, so compose would take it from the caller's shell")
                })?;
                let value = interpolate(&value).map_err(|e| format!("{name}: {e}"))?;
                Ok((name, value))
            })
            .collect()
    }
}

/// Resolves compose's `${VAR:-default}` and `${VAR-default}` to the default,
/// and `$$` to `$`. A variable without a default is refused: the file must
/// work without a `.env` or exported variables.
fn interpolate(raw: &str) -> Result<String, String> {
    let no_default = || {
        format!(
            "`{raw}` has no default, so without a .env the service gets an empty value; write ${{VAR:-…}}"
        )
    };
    let mut out = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let (body, after) = rest
            .strip_prefix('{')
            .and_then(|braced| braced.split_once('}'))
            .ok_or_else(no_default)?;
        let (_, default) = body
            .split_once(":-")
            .or_else(|| body.split_once('-'))
            .ok_or_else(no_default)?;
        out.push_str(default);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPort {
    Long { target: u16 },
    Number(u16),
    Short(String),
}

impl RawPort {
    /// The container side of `"8080"`, `"8080:8080"`,
    /// `"127.0.0.1:9092:29092/tcp"` or `{ target: 8080 }`.
    fn container_port(self) -> Result<u16, String> {
        match self {
            Self::Long { target } | Self::Number(target) => Ok(target),
            Self::Short(spec) => {
                let without_protocol = spec.split('/').next().unwrap_or_default();
                let container = without_protocol.rsplit(':').next().unwrap_or_default();
                container
                    .parse()
                    .map_err(|_| format!("port `{spec}`: expected a single container port"))
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDependsOn {
    List(Vec<String>),
    Map(BTreeMap<String, RawDependency>),
}

impl Default for RawDependsOn {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

impl RawDependsOn {
    fn into_conditions(self) -> BTreeMap<String, String> {
        match self {
            Self::List(names) => {
                let started = |name| (name, "service_started".to_owned());
                names.into_iter().map(started).collect()
            }
            Self::Map(map) => map
                .into_iter()
                .map(|(name, d)| (name, d.condition))
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct RawDependency {
    condition: String,
}

#[derive(Deserialize)]
struct RawHealthcheck {
    test: Option<StringOrList>,
    #[serde(default)]
    disable: bool,
}

impl RawHealthcheck {
    fn is_enabled(&self) -> bool {
        let test = self.test.as_ref().map(StringOrList::first_word);
        !self.disable && test.is_some_and(|word| word != "NONE")
    }
}

// ----------------------------------------------------------------- .env.example

/// `.env.example`: one section per binary, opened by a `# [name] …` line and
/// holding `NAME=value` lines, commented out (`# NAME=value`) or not.
struct EnvExample {
    sections: BTreeMap<String, BTreeMap<String, String>>,
    /// Lines that fit no section, or repeat one.
    problems: Vec<String>,
}

impl EnvExample {
    fn load() -> Self {
        let mut example = Self {
            sections: BTreeMap::new(),
            problems: Vec::new(),
        };
        let mut section: Option<String> = None;
        for (index, line) in read_repo_file(ENV_EXAMPLE).lines().enumerate() {
            let number = index + 1;
            let line = line
                .strip_prefix('#')
                .map_or(line, |l| l.strip_prefix(' ').unwrap_or(l));
            if let Some(header) = line.strip_prefix('[') {
                let name = header.split(']').next().unwrap_or_default().to_owned();
                if example
                    .sections
                    .insert(name.clone(), BTreeMap::new())
                    .is_some()
                {
                    example
                        .problems
                        .push(format!("line {number}: a second section [{name}]"));
                }
                section = Some(name);
                continue;
            }
            let Some((variable, value)) = line.split_once('=').filter(|(v, _)| is_variable(v))
            else {
                continue;
            };
            let Some(name) = &section else {
                example.problems.push(format!(
                    "line {number}: {variable} is outside any [service] section"
                ));
                continue;
            };
            let entries = example.sections.entry(name.clone()).or_default();
            if entries
                .insert(variable.to_owned(), value.to_owned())
                .is_some()
            {
                example.problems.push(format!(
                    "line {number}: {variable} appears twice in [{name}]"
                ));
            }
        }
        example
    }
}

fn is_variable(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}
